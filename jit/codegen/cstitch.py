"""The fast path of stitching: jit/codegen/stitch.py's loop, in C (stencils/stitch.c).

Each library gets patch plans once: per stencil its bytes and its holes as
small integer records (relocation number, what fills it, which helper,
addend), and a table of its stack-caching variants.  A compile's steps
are one StepPlan array (as form.c made them, or packed), and two calls do
the rest: jit_plan copies them, chooses each step's variant
(jit_cache_stack) and lays them out (jit_layout); jit_stitch stitches them
straight into the region's writable view.  The three are also callable one
by one (the tests use them so).  jit.codegen.stitch,
jit.codegen.stackcache.assign and jit.codegen.stitch.layout stay the readable reference;
the tests require the same choices, offsets and bytes from both.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..build import relocs
from ..build.hostlib import hostlib
from ..build.stencils import Hole, HoleKind, StencilLibrary
from ..lang.ir import wrap64
from ..lang.optable import optable
from ..targets import Target, get_target
from ..vmdef import constant
from .cform import STEP_FIELDS, PackedSteps
from .stackcache import STATES, count, enters_in_memory, library_depth, natural, stencil_name
from .step import Step
from .stitch import Layout, StitchError, op_shapes

# Each hole kind as the C stitcher numbers it (vm.h's HOLE_* constants).
KIND_NUMBERS = {kind: constant(f"HOLE_{kind.name}") for kind in HoleKind}
ROW = constant("CACHE_ROW")


def reloc_numbers() -> dict[str, int]:
    """Each relocation type as the C stitcher numbers it (its row in relocs.def)."""
    return {r.name: r.index for r in relocs.table()}


class Plans:
    """A library's patch plans, kept alive as long as the plans are used."""

    def __init__(self, library: StencilLibrary) -> None:
        ffi, self.lib = hostlib()
        self.ffi = ffi
        self.target = _target_plan(ffi, get_target(library.target))
        self.index = {name: k for k, name in enumerate(library.ops)}
        # The helpers' order in the values array stitching gets: every helper
        # the library's stencils call, by name (whichever op set's they are).
        called = {
            h.symbol for st in library.ops.values() for h in (*st.holes, *st.data_holes) if h.kind is HoleKind.HELPER
        }
        helpers = {name: k for k, name in enumerate(sorted(called))}
        if len(helpers) > 63:
            raise StitchError(f"{len(helpers)} helpers: the C stitcher's plans hold 63 at most")
        self.helper_order = list(helpers)
        numbers = reloc_numbers()
        self.keep: list[object] = []
        self.plans = ffi.new("StencilPlan[]", len(library.ops))
        shapes = op_shapes(library)
        for k, (name, stencil) in enumerate(library.ops.items()):
            plan = self.plans[k]
            code, data = ffi.new("uint8_t[]", stencil.code or b"\0"), ffi.new("uint8_t[]", stencil.data or b"\0")
            holes = self._holes(stencil.holes, numbers, helpers)
            data_holes = self._holes(stencil.data_holes, numbers, helpers)
            self.keep += [code, data, holes, data_holes]
            plan.code, plan.code_size = code, len(stencil.code)
            plan.data, plan.data_size = data, len(stencil.data)
            plan.holes, plan.nholes = holes, len(stencil.holes)
            plan.data_holes, plan.ndata_holes = data_holes, len(stencil.data_holes)
            shape = shapes[name]
            plan.helper_mask = sum(1 << helpers[h] for h in shape.helpers)
            plan.nshort = len(shape.short)
            plan.short_reach = min((relocs.get(r).reach for r in shape.short), default=0)
        self.names = list(library.ops)
        # Whether the library numbers its ops as the op table does (all of it, in order, before any
        # variant): then steps formed in C (op-table numbers) are already this library's StepPlans.
        self.table_order = all(self.index.get(op.name) == op.opcode for op in optable())
        self.cache_table = self._cache_table(library)
        self.table_pointer = ffi.from_buffer("int32_t[]", self.cache_table)
        self.error = ffi.new("char[]", 200)
        self._helper_values: dict[int, tuple[Mapping[str, int], Any]] = {}
        self._room = 0  # steps the scratch below has room for, kept from compile to compile
        self._entry: Any = None
        self._tramp = ffi.new("int64_t[2]")
        self._tramp_room = 0
        self._tramp_dest: Any = None

    def _cache_table(self, library: StencilLibrary) -> array:
        """jit_cache_stack's table: per stencil, its variants and its states."""
        block, first = constant("CACHE_BLOCK"), constant("CACHE_FIRST")
        rows = 1 + max((self.index[op.name] for op in optable() if op.name in self.index), default=0)
        table = array("i", [0] * ROW * rows)  # (only the ops' own rows: steps are chosen from those)
        depth = library_depth(library.ops)
        for info in optable():
            if info.name not in self.index:
                continue
            row = ROW * self.index[info.name]
            for i in range(STATES):
                at = row + block * i
                n = natural(info, count(i), depth)
                ways = [self._way(library, info.name, i, o) for o in range(STATES) if n and count(o) == n]
                ways = [w for w in ways if w[1] >= 0]
                table[at + constant("CACHE_CANDIDATES")] = len(ways)
                table[at + constant("CACHE_TO_MEMORY") : at + first] = array("i", self._way(library, info.name, i, 0))
                for j, w in enumerate(ways):
                    table[at + first + 3 * j : at + first + 3 * j + 3] = array("i", w)
            table[row + constant("CACHE_ENTERS_IN_MEMORY")] = enters_in_memory(info)
        return table

    def _way(self, library: StencilLibrary, op: str, cached_in: int, cached_out: int) -> list[int]:
        """(state out, variant, its cost) as jit_cache_stack's table has them (variant -1: not built)."""
        k = self.index.get(stencil_name(op, cached_in, cached_out), -1)
        return [cached_out, k, library.ops[self.names[k]].cost if k >= 0 else 0]

    def cache_stack(self, packed: Packed) -> None:
        """Choose each packed step's stack-caching variant (jit.codegen.stackcache.assign), in place."""
        scratch = self.ffi.new("int64_t[]", packed.n + 1)
        self.lib.jit_cache_stack(packed.pointer, packed.n, self.table_pointer, scratch)

    def stencils(self, packed: Packed) -> list[str]:
        """The stencil each packed step uses."""
        return self.stencil_names(memoryview(packed.data).cast("q")[0::STEP_FIELDS])

    def stencil_names(self, ops: Sequence[int]) -> list[str]:
        """The stencils of these op numbers (each step's, as chosen)."""
        names = self.names
        return [names[k] for k in ops]

    def _holes(self, holes: tuple[Hole, ...], numbers: dict[str, int], helpers: dict[str, int]):
        out = self.ffi.new("HolePlan[]", max(1, len(holes)))
        for k, h in enumerate(holes):
            out[k].offset, out[k].reloc, out[k].kind = h.offset, numbers[h.reloc], KIND_NUMBERS[h.kind]
            out[k].helper, out[k].addend = helpers.get(h.symbol, 0), h.addend
        return out

    def pack(self, steps: Sequence[Step]) -> Packed:
        """The steps as the C StepPlan array (a copy of steps formed in C)."""
        if isinstance(steps, PackedSteps) and self.table_order:
            data = bytearray(steps.data)
            return Packed(data, len(steps), self.ffi.from_buffer("StepPlan[]", data, require_writable=True))
        try:
            data = _pack_all(self.index, steps, _STEP.pack)
        except struct.error:  # an operand given as unsigned 64 bits: slow path
            data = _pack_all(self.index, steps, _pack_s64)
        return Packed(data, len(steps), self.ffi.from_buffer("StepPlan[]", data, require_writable=True))

    def plan(self, steps: Sequence[Step], stack_cache: bool = True) -> tuple[Packed, Layout]:
        """pack, cache_stack (unless stack_cache is off) and layout in one C
        call (jit_plan); steps formed in C are read where they are."""
        ffi = self.ffi
        n = len(steps)
        if isinstance(steps, PackedSteps) and self.table_order:  # (copied by C: the formed steps stay as they are)
            formed = ffi.from_buffer("StepPlan[]", steps.data)
            data = bytearray(_STEP.size * max(1, n))
            chosen = ffi.from_buffer("StepPlan[]", data, require_writable=True)
        else:  # (packed here, a copy already: chosen in place)
            packed = self.pack(steps)
            data, chosen = packed.data, packed.pointer
            formed = chosen
        if n + 1 > self._room:
            self._room = max(n + 1, 2 * self._room)
            self._entry = ffi.new("int64_t[]", self._room)
        code_at, data_at = array("q", bytes(8 * (n + 1))), array("q", bytes(8 * max(1, n)))
        code_ptr = ffi.from_buffer("int64_t[]", code_at, require_writable=True)
        data_ptr = ffi.from_buffer("int64_t[]", data_at, require_writable=True)
        tramp = self._tramp
        table = self.table_pointer if stack_cache else ffi.NULL
        size = self.lib.jit_plan(self.plans, formed, n, table, chosen, self._entry, code_ptr, data_ptr, tramp)
        lay = Layout(code_at, tramp[0], tramp[1], data_at if n else array("q"), size, (code_ptr, data_ptr))
        return Packed(data, n, chosen), lay

    def layout(self, packed: Packed) -> Layout:
        """jit.codegen.stitch.layout, in C, of packed steps."""
        n = packed.n
        code_at, data_at = array("q", bytes(8 * (n + 1))), array("q", bytes(8 * max(1, n)))
        ffi = self.ffi
        code_ptr = ffi.from_buffer("int64_t[]", code_at, require_writable=True)
        data_ptr = ffi.from_buffer("int64_t[]", data_at, require_writable=True)
        tramp = ffi.new("int64_t[2]")
        size = self.lib.jit_layout(self.plans, packed.pointer, n, code_ptr, data_ptr, tramp)
        return Layout(code_at, tramp[0], tramp[1], data_at[:n], size, (code_ptr, data_ptr))

    def helper_values(self, helpers: Mapping[str, int]):
        """The helpers' addresses in plan order, for stitch_packed (made once
        per helpers mapping: a runtime's never changes)."""
        kept = self._helper_values.get(id(helpers))
        if kept is None or kept[0] is not helpers:
            kept = helpers, self.ffi.new("uint64_t[]", [helpers.get(name, 0) for name in self.helper_order])
            self._helper_values[id(helpers)] = kept
        return kept[1]

    def values_for(self, helpers: Mapping[str, int]):
        """The helpers' addresses in plan order, made afresh (for mappings that
        change from compile to compile: an op set's helpers are placed with its code)."""
        return self.ffi.new("uint64_t[]", [helpers.get(name, 0) for name in self.helper_order] or [0])

    def stitch_packed(self, packed: Packed, lay: Layout, address: int, base: int, helper_values) -> int:
        """Stitch packed steps into writable memory at `address` (as if it were
        at `base`); returns how many trampolines were used."""
        ffi = self.ffi
        if lay.trampoline_slots > self._tramp_room:  # (scratch kept from compile to compile)
            self._tramp_room = max(lay.trampoline_slots, 2 * self._tramp_room)
            self._tramp_dest = ffi.new("uint64_t[]", self._tramp_room)
        scratch = self._tramp_dest if self._tramp_room else ffi.NULL
        if lay.native is not None:
            code_ptr, data_ptr = lay.native
        else:  # laid out by jit.codegen.stitch.layout
            code_ptr = ffi.new("int64_t[]", list(lay.code_offsets))
            data_ptr = ffi.new("int64_t[]", list(lay.data_offsets) or [0])
        used = self.lib.jit_stitch(
            self.plans,
            packed.pointer,
            packed.n,
            code_ptr,
            data_ptr,
            lay.trampolines,
            lay.trampoline_slots,
            lay.size,
            ffi.cast("uint8_t *", address),
            base,
            helper_values,
            self.target,
            scratch,
            self.error,
            200,
        )
        if used < 0:
            raise StitchError(ffi.string(self.error).decode())
        return used

    def render_packed(self, packed: Packed, lay: Layout, base: int, helper_values) -> tuple[bytes, int]:
        """stitch_packed into a buffer of its own: the bytes (as if at `base`)
        and the trampolines used (the emulator maps the bytes)."""
        buf = self.ffi.new("uint8_t[]", max(1, lay.size))
        used = self.stitch_packed(packed, lay, int(self.ffi.cast("uintptr_t", buf)), base, helper_values)
        return bytes(self.ffi.buffer(buf, lay.size)), used

    def stitch_into(
        self, steps: Sequence[Step], lay: Layout, address: int, base: int, helpers: Mapping[str, int]
    ) -> int:
        """stitch_packed, from steps and a helper mapping."""
        return self.stitch_packed(self.pack(steps), lay, address, base, self.helper_values(helpers))


def _target_plan(ffi, target: Target):
    """The C stitcher's view of a target."""
    plan = ffi.new("TargetPlan *")
    plan.arch, plan.pad, plan.branch_bias = target.arch, target.pad[0], target.branch_bias
    plan.trampoline_address_at = target.trampoline_address_at
    ffi.memmove(plan.trampoline, target.trampoline_template, len(target.trampoline_template))
    ffi.memmove(plan.link_jump, target.link_jump, len(target.link_jump))
    plan.link_size, plan.link_reloc = len(target.link_jump), reloc_numbers()[target.link_reloc]
    plan.link_field_at, plan.link_addend = target.link_field_at, target.link_addend
    return plan


@dataclass
class Packed:
    """Steps packed as C StepPlans, with the pointer C reads them through."""

    data: bytearray
    n: int
    pointer: Any  # cffi's StepPlan[]


_STEP = struct.Struct(f"{STEP_FIELDS}q")


def _pack_all(index: Mapping[str, int], steps: Sequence[Step], pack: Callable[..., bytes]) -> bytearray:
    """Every step's StepPlan fields through `pack` (one comprehension: this is
    the hot part of a compile's Python)."""
    return bytearray().join(
        [
            pack(
                index[s.op],
                s.operand0,
                s.operand1,
                s.position,
                -1 if s.target is None else s.target,
                -1 if s.exit is None else s.exit,
                -1 if s.continue_to is None else s.continue_to,
                s.target_address or 0,
                s.operand2,
                s.operand3,
            )
            for s in steps
        ]
    )


def _pack_s64(*fields: int) -> bytes:
    return _STEP.pack(*map(_s64, fields))


_s64 = wrap64  # an unsigned 64-bit value as the signed one with the same bits


_PLANS: dict[tuple[str, str], Plans] = {}


def plans_for(library: StencilLibrary) -> Plans:
    """One set of plans per library content (its target and cache key)."""
    key = (library.target, library.key)
    if key not in _PLANS:
        _PLANS[key] = Plans(library)
    return _PLANS[key]


def stitch_bytes(library: StencilLibrary, steps: Sequence[Step], lay: Layout, base: int, helpers) -> tuple[bytes, int]:
    """The C path into bytes, for steps laid out by jit.codegen.stitch.layout
    (the tests compare it with the Python reference)."""
    plans = plans_for(library)
    return plans.render_packed(plans.pack(steps), lay, base, plans.helper_values(helpers))
