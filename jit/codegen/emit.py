"""From steps to code: choose each step's stencil, lay them out, stitch them at an address.

The same three passes exist twice, on purpose: in C (jit.codegen.cstitch,
stencils/stitch.c), the fast path every compile takes, and in Python
(jit.codegen.stackcache, jit.codegen.stitch), the readable reference the
tests hold the C to, byte for byte.  Stitcher picks one; Planned is the
result of the first two passes, which both the native runtime (stitching
straight into a writable region) and the emulator (stitching into bytes it
then maps) use, so neither repeats the choice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from ..build.stencils import StencilLibrary
from .cstitch import plans_for
from .stackcache import assign, library_depth
from .step import Step
from .stitch import Layout, layout, stitch
from .stitcher import Stitcher


@dataclass(frozen=True)
class Planned:
    """Steps with their stencils chosen and laid out, ready to stitch."""

    layout: Layout
    stencils: Callable[[], list[str]]  # the stencil each step uses (its stack-caching variant)
    write: Callable[[int, int], int]  # (writable address, base address) -> trampolines used
    render: Callable[[int], tuple[bytes, int]]  # base address -> (bytes, trampolines used)


def _render(plans, packed, lay: Layout, values, base: int) -> tuple[bytes, int]:
    return plans.render_packed(packed, lay, base, values)


def plan(
    library: StencilLibrary,
    steps: Sequence[Step],
    helpers: Mapping[str, int],
    stitcher: Stitcher = Stitcher.C,
    stack_cache: bool = True,
) -> Planned:
    """Choose each step's stencil (its stack-caching variant, unless
    stack_cache is off) and lay the steps out, with `stitcher`'s code."""
    if stitcher is Stitcher.C:
        plans = plans_for(library)
        packed, lay = plans.plan(steps, stack_cache)
        values = plans.helper_values(helpers)

        def write_c(address: int, base: int) -> int:
            return plans.stitch_packed(packed, lay, address, base, values)

        return Planned(lay, partial(plans.stencils, packed), write_c, partial(_render, plans, packed, lay, values))

    chosen = assign(steps, library.ops, library_depth(library.ops)) if stack_cache else list(steps)
    lay = layout(library, chosen)

    def render_py(base: int) -> tuple[bytes, int]:
        stitched = stitch(library, chosen, lay, base, helpers)
        return stitched.code, stitched.trampolines

    def write_py(address: int, base: int) -> int:
        import ctypes  # (the reference stitcher only: a default run need not load ctypes)

        code, used = render_py(base)
        ctypes.memmove(address, code, len(code))
        return used

    return Planned(lay, partial(list, [s.op for s in chosen]), write_py, render_py)
