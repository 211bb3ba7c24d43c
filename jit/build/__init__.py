"""Building stencil libraries: clang, ELF objects, processing, the cache."""

SHIM = "shim"  # the stencil that enters compiled code from C (stencils/shim.c)
