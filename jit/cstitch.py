"""The fast path of stitching: jit/stitch.py's loop, in C (stencils/stitch.c).

Each library gets patch plans once: per stencil its bytes and its holes as
small integer records (relocation number, what fills it, which helper,
addend).  A compile then packs its steps into one array and makes a single
call, which writes straight into the (still writable) region.  jit.stitch
stays the readable reference; the tests require the same bytes from both.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Mapping, Sequence
from functools import cache

from .hostlib import hostlib
from .optable import helper_names
from .paths import STENCILS_DIR
from .stencils import HELPER_PREFIX, Hole, HoleKind, StencilLibrary
from .stitch import Layout, Step, StitchError

KINDS = [
    HoleKind.OPERAND0,
    HoleKind.OPERAND1,
    HoleKind.POSITION,
    HoleKind.CONTINUE,
    HoleKind.TARGET,
    HoleKind.EXIT,
    HoleKind.HELPER,
    HoleKind.CODE,
    HoleKind.DATA,
]


@cache
def reloc_numbers() -> dict[str, int]:
    names = re.findall(r"^RELOC\((\w+)\)", (STENCILS_DIR / "relocs.def").read_text(), re.M)
    return {name: k for k, name in enumerate(names)}


class Plans:
    """A library's patch plans, kept alive as long as the plans are used."""

    def __init__(self, library: StencilLibrary) -> None:
        ffi, self.lib = hostlib()
        self.ffi = ffi
        self.x86 = library.target.startswith("x86_64")
        self.index = {name: k for k, name in enumerate(library.ops)}
        helpers = {HELPER_PREFIX + n: k for k, n in enumerate(helper_names())}
        self.helper_order = list(helpers)
        relocs = reloc_numbers()
        self.keep: list[object] = []
        self.plans = ffi.new("StencilPlan[]", len(library.ops))
        for k, stencil in enumerate(library.ops.values()):
            plan = self.plans[k]
            code, data = ffi.new("uint8_t[]", stencil.code or b"\0"), ffi.new("uint8_t[]", stencil.data or b"\0")
            holes = self._holes(stencil.holes, relocs, helpers)
            data_holes = self._holes(stencil.data_holes, relocs, helpers)
            self.keep += [code, data, holes, data_holes]
            plan.code, plan.code_size = code, len(stencil.code)
            plan.data, plan.data_size = data, len(stencil.data)
            plan.holes, plan.nholes = holes, len(stencil.holes)
            plan.data_holes, plan.ndata_holes = data_holes, len(stencil.data_holes)
        self.error = ffi.new("char[]", 200)

    def _holes(self, holes: tuple[Hole, ...], relocs: dict[str, int], helpers: dict[str, int]):
        out = self.ffi.new("HolePlan[]", max(1, len(holes)))
        for k, h in enumerate(holes):
            out[k].offset, out[k].reloc, out[k].kind = h.offset, relocs[h.reloc], KINDS.index(h.kind)
            out[k].helper, out[k].addend = helpers.get(h.symbol, 0), h.addend
        return out

    def _fields(self, s: Step) -> tuple[int, ...]:
        return (
            self.index[s.op],
            s.operand0,
            s.operand1,
            s.position,
            -1 if s.target is None else s.target,
            -1 if s.exit is None else s.exit,
            -1 if s.continue_to is None else s.continue_to,
            s.target_address or 0,
        )

    def stitch_into(
        self, steps: Sequence[Step], lay: Layout, address: int, base: int, helpers: Mapping[str, int]
    ) -> int:
        """Stitch into writable memory at `address` (as if it were at `base`);
        returns how many trampolines were used."""
        ffi = self.ffi
        flat = array("q")
        try:
            for fields in map(self._fields, steps):
                flat.extend(fields)
        except OverflowError:  # an operand given as unsigned 64 bits: slow path
            flat = array("q", (_s64(v) for s in steps for v in self._fields(s)))
        code_at = array("q", lay.code_offsets)
        data_at = array("q", lay.data_offsets or (0,))
        helper_values = array("Q", [helpers.get(name, 0) for name in self.helper_order])
        scratch = ffi.new("uint64_t[]", max(1, lay.trampoline_slots))
        used = self.lib.jit_stitch(
            self.plans,
            ffi.from_buffer("StepPlan[]", flat),
            len(steps),
            ffi.from_buffer("int64_t[]", code_at),
            ffi.from_buffer("int64_t[]", data_at),
            lay.trampolines,
            lay.trampoline_slots,
            lay.size,
            ffi.cast("uint8_t *", address),
            base,
            ffi.from_buffer("uint64_t[]", helper_values),
            self.x86,
            scratch,
            self.error,
            200,
        )
        if used < 0:
            raise StitchError(ffi.string(self.error).decode())
        return used


def _s64(v: int) -> int:
    """An unsigned 64-bit value as the signed one with the same bits."""
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >> 63 else v


_PLANS: dict[tuple[str, str], Plans] = {}


def plans_for(library: StencilLibrary) -> Plans:
    """One set of plans per library content (its target and cache key)."""
    key = (library.target, library.key)
    if key not in _PLANS:
        _PLANS[key] = Plans(library)
    return _PLANS[key]


def stitch_bytes(library: StencilLibrary, steps: Sequence[Step], lay: Layout, base: int, helpers) -> tuple[bytes, int]:
    """The C path into a buffer (for the emulator, and for comparing with jit.stitch)."""
    plans = plans_for(library)
    buf = plans.ffi.new("uint8_t[]", max(1, lay.size))
    used = plans.stitch_into(steps, lay, int(plans.ffi.cast("uintptr_t", buf)), base, helpers)
    return bytes(plans.ffi.buffer(buf, lay.size)), used
