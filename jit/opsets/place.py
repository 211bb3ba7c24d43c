"""Laying out and stitching an op set's program, with the helpers it calls.

A helper is a stencil of its own (helper.<name>, jit.opsets.build) placed
after the program's steps in the same code, once per compile; the holes
that call it get its address.  Helpers may call helpers: every one reached
is placed.  The same code runs natively and under emulation, so an op
set's helpers work on either target without a host library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..build.stencils import HELPER_PREFIX, HoleKind, StencilLibrary
from ..codegen.cstitch import plans_for
from ..codegen.step import Step
from ..codegen.stitch import Layout, StitchError, layout, op_shapes, stitch
from ..codegen.stitcher import Stitcher
from . import HELPER_STENCIL


def helpers_reached(library: StencilLibrary, steps: Sequence[Step]) -> list[str]:
    """The helpers the steps call, and those they call, in a fixed order
    (from the shapes layout works out once per library)."""
    shapes = op_shapes(library)
    todo: set[str] = set().union(*(shapes[s.op].helpers for s in steps)) if steps else set()
    reached: set[str] = set()
    while todo:
        symbol = todo.pop()
        reached.add(symbol)
        todo |= shapes[HELPER_STENCIL + symbol[len(HELPER_PREFIX) :]].helpers - reached
    return sorted(symbol[len(HELPER_PREFIX) :] for symbol in reached)


@dataclass(frozen=True)
class Placed:
    """The steps and the helpers they reach, laid out (at no address yet).

    Stitched by the C stitcher (jit.codegen.cstitch), or with
    Stitcher.PYTHON by the reference (jit.codegen.stitch): the tests hold
    the two to the same bytes, as for the stack machine."""

    library: StencilLibrary
    steps: list[Step]  # the program's, then one per helper
    helpers: list[str]
    layout: Layout
    stitcher: Stitcher
    packed: Any = None  # the C stitcher's StepPlans

    def addresses(self, base: int) -> dict[str, int]:
        first = len(self.steps) - len(self.helpers)
        offsets = self.layout.code_offsets
        return {HELPER_PREFIX + name: base + offsets[first + k] for k, name in enumerate(self.helpers)}

    def render(self, base: int) -> bytes:
        """The code as bytes to copy to `base`, every hole filled."""
        if self.stitcher is Stitcher.C:
            plans = plans_for(self.library)
            return plans.render_packed(self.packed, self.layout, base, plans.values_for(self.addresses(base)))[0]
        return stitch(self.library, self.steps, self.layout, base, self.addresses(base)).code

    def write(self, address: int, base: int) -> None:
        """Stitch straight into writable memory at `address`, for the code to run at `base`."""
        if self.stitcher is Stitcher.C:
            plans = plans_for(self.library)
            plans.stitch_packed(self.packed, self.layout, address, base, plans.values_for(self.addresses(base)))
            return
        import ctypes

        code = self.render(base)
        ctypes.memmove(address, code, len(code))


def place(library: StencilLibrary, steps: Sequence[Step], stitcher: Stitcher = Stitcher.C) -> Placed:
    last = library.ops[steps[-1].op]
    if any(h.kind is HoleKind.CONTINUE for h in last.holes) and steps[-1].continue_to is None:
        raise StitchError(f"the last step ({steps[-1].op}) goes on to the next, but nothing follows it")
    names = helpers_reached(library, steps)
    placed = [*steps, *(Step(HELPER_STENCIL + name) for name in names)]
    if stitcher is Stitcher.C:
        plans = plans_for(library)
        packed, lay = plans.plan(placed, stack_cache=False)  # (an op set's steps name their stencils already)
        return Placed(library, placed, names, lay, stitcher, packed)
    return Placed(library, placed, names, layout(library, placed), stitcher)
