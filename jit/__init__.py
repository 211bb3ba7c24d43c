"""A copy-and-patch JIT prototype library.

Data flows one way: C templates -> ELF objects -> stencils -> traces ->
executable memory -> run.  See README.md for the tour.
"""
