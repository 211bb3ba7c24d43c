"""The stack machine's Python side as an op set: the variants of its stencils.

Every op of ops.def is one stencil entered and left with the operand stack
in memory; stack caching (jit.codegen.stackcache) adds the variants that
keep the top slots in registers on the way in or out (integer registers, or
float registers), chosen per step when a trace is compiled.  The library builder asks for them here, as it would
ask any op set.  The rest of the stack machine's runtime is the package's
own (jit.api: tiering, guards, the LLVM peer, the C interpreters).
"""

from __future__ import annotations

from jit.build.library import Variant
from jit.codegen.stackcache import count, float_mask, stencil_name, variants
from jit.lang.optable import optable
from jit.lang.table import OpRow


def stencil_variants(row: OpRow, variant: Variant) -> list[tuple[str, tuple[str, ...]]]:
    """(stencil name, extra clang defines) for each stack-caching variant of an op."""
    op = optable()[row.index]
    out = []
    for i, o in variants(op, variant.stack_depth, variant.float_cache):
        if not (i or o):
            continue
        defines = [f"-DCACHE_IN={count(i)}", f"-DCACHE_OUT={count(o)}"]
        defines += [f"-DCACHE_IN_FLOAT={float_mask(i)}"] * (float_mask(i) > 0)
        defines += [f"-DCACHE_OUT_FLOAT={float_mask(o)}"] * (float_mask(o) > 0)
        out.append((stencil_name(row.name, i, o), tuple(defines)))
    return out
