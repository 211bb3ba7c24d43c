"""Layout and stitching: copy stencils one after another and patch their holes.

The input is a list of steps, one stencil instance each, in execution order
(so each step's continuation is the next step).  Layout places every step's
code, then a trampoline area, then every step's data; stitching copies the
bytes and fills each hole with its value at a given base address.  Nothing
here touches memory: the result is bytes, which the caller writes into an
executable region (jit.runtime.native) or into the emulator's memory
(jit.runtime.emulate).  This is the readable reference: the C stitcher
(jit.codegen.cstitch) must give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from ..build import relocs
from ..build.relocs import short_branch
from ..build.stencils import Hole, HoleKind, Stencil, StencilLibrary
from ..errors import JitError
from ..targets import Target, get_target
from ..vmdef import DATA_ALIGN, TRAMPOLINE_SIZE
from .patch import RelocationError, patch
from .step import Step


@dataclass(slots=True)  # (not frozen: a frozen dataclass's __init__ cost microseconds a compile)
class Layout:
    code_offsets: Sequence[int]  # one per step, plus the end of the code
    trampolines: int  # offset of the trampoline area
    trampoline_slots: int
    data_offsets: Sequence[int]  # one per step
    size: int  # code + trampolines + data
    native: Any = field(default=None, compare=False, repr=False)  # the C stitcher's views of the offsets


@dataclass(frozen=True)
class Stitched:
    code: bytes  # code, trampolines and data, ready to copy to the base address
    trampolines: int  # how many trampoline slots were used


class StitchError(JitError):
    pass


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class _OpShape:
    code: int  # bytes of code
    data: int  # bytes of data
    helpers: frozenset[str]  # helper symbols it calls
    short: tuple[str, ...]  # relocations of its short-reach branches


_SHAPES: dict[tuple[str, str], dict[str, _OpShape]] = {}


def op_shapes(library: StencilLibrary) -> dict[str, _OpShape]:
    """What layout needs of each stencil, worked out once per library."""
    key = (library.target, library.key)
    if key not in _SHAPES:
        _SHAPES[key] = {
            name: _OpShape(
                len(st.code),
                len(st.data),
                frozenset(h.symbol for h in (*st.holes, *st.data_holes) if h.kind is HoleKind.HELPER),
                tuple(h.reloc for h in st.holes if short_branch(h.reloc) and h.kind is not HoleKind.HELPER),
            )
            for name, st in library.ops.items()
        }
    return _SHAPES[key]


def layout(library: StencilLibrary, steps: Sequence[Step]) -> Layout:
    shapes = op_shapes(library)
    used = [shapes[s.op] for s in steps]
    offsets = [0, *accumulate(u.code for u in used)]
    code_end = offsets[-1]
    helpers: set[str] = set()
    for u in used:
        helpers |= u.helpers
    # Helpers and other traces may be out of a branch's reach.
    slots = len(helpers) + sum(1 for s in steps if s.target_address is not None)
    short = [r for u in used for r in u.short]
    if any(code_end >= relocs.get(r).reach for r in short):
        slots += len(short)
    tramp = _align(code_end, TRAMPOLINE_SIZE)
    data = _align(tramp + slots * TRAMPOLINE_SIZE, DATA_ALIGN)
    data_offsets = []
    for u in used:
        data_offsets.append(data)
        if u.data:
            data = _align(data + u.data, DATA_ALIGN)
    return Layout(tuple(offsets), tramp, slots, tuple(data_offsets), data)


def _values(step: Step, index: int, lay: Layout, base: int) -> dict[HoleKind, int]:
    """The values of the holes that depend only on the step itself."""
    values = {
        HoleKind.OPERAND0: step.operand0,
        HoleKind.OPERAND1: step.operand1,
        HoleKind.OPERAND2: step.operand2,
        HoleKind.OPERAND3: step.operand3,
        HoleKind.OPERAND0_X8: step.operand0 * 8,
        HoleKind.OPERAND1_X8: step.operand1 * 8,
        HoleKind.POSITION: step.position,
        HoleKind.CODE: base + lay.code_offsets[index],
        HoleKind.DATA: base + lay.data_offsets[index],
    }
    after = index + 1 if step.continue_to is None else step.continue_to
    if after < len(lay.code_offsets) - 1:
        values[HoleKind.CONTINUE] = base + lay.code_offsets[after]
    return values


class _Stitcher:
    def __init__(self, target: Target, lay: Layout, base: int, buf: bytearray) -> None:
        self.target, self.lay, self.base, self.buf = target, lay, base, buf
        self.trampolines: dict[int, int] = {}  # destination -> address

    def trampoline_to(self, destination: int) -> int:
        if destination not in self.trampolines:
            n = len(self.trampolines)
            if n >= self.lay.trampoline_slots:
                raise StitchError("out of trampoline slots")
            off = self.lay.trampolines + n * TRAMPOLINE_SIZE
            self.buf[off : off + TRAMPOLINE_SIZE] = self.target.trampoline(destination)
            self.trampolines[destination] = self.base + off
        return self.trampolines[destination]

    def fill(self, blob_offset: int, hole: Hole, value: int, where: str) -> None:
        off = blob_offset + hole.offset
        place = self.base + off
        try:
            patch(self.buf, off, hole.reloc, value + hole.addend, place)
        except RelocationError as e:
            if not (e.out_of_range and self.target.is_branch_instruction(self.buf, off, hole.reloc)):
                raise StitchError(f"{where}: {e}") from e
            bias = self.target.branch_bias
            via = self.trampoline_to(value + hole.addend + bias)
            try:
                patch(self.buf, off, hole.reloc, via - bias, place)
            except RelocationError as again:
                raise StitchError(f"{where}: {again} (even through a trampoline)") from again


def stitch(
    library: StencilLibrary,
    steps: Sequence[Step],
    lay: Layout,
    base: int,
    helpers: Mapping[str, int],
) -> Stitched:
    """The bytes of the laid-out steps at address `base`, every hole filled."""
    buf = bytearray(lay.size)
    target = get_target(library.target)
    tramp_end = lay.trampolines + lay.trampoline_slots * TRAMPOLINE_SIZE
    buf[lay.code_offsets[-1] : tramp_end] = target.pad * (tramp_end - lay.code_offsets[-1])
    st = _Stitcher(target, lay, base, buf)
    for index, step in enumerate(steps):
        stencil: Stencil = library.ops[step.op]
        code_at, data_at = lay.code_offsets[index], lay.data_offsets[index]
        buf[code_at : code_at + len(stencil.code)] = stencil.code
        buf[data_at : data_at + len(stencil.data)] = stencil.data
        values = _values(step, index, lay, base)
        where = f"step {index} ({step.op})"
        for holes, at in ((stencil.holes, code_at), (stencil.data_holes, data_at)):
            for hole in holes:
                if hole.kind is HoleKind.HELPER:
                    value = helpers[hole.symbol]
                elif hole.kind is HoleKind.TARGET and step.target_address is not None:
                    value = step.target_address
                elif hole.kind is HoleKind.TARGET:
                    value = _step_address(step.target, lay, base, where, "target")
                elif hole.kind is HoleKind.EXIT:
                    value = _step_address(step.exit, lay, base, where, "exit")
                elif hole.kind in values:
                    value = values[hole.kind]
                else:
                    raise StitchError(f"{where}: nothing follows it, but it has a {hole.kind} hole")
                st.fill(at, hole, value, where)
    return Stitched(bytes(buf), len(st.trampolines))


def _step_address(i: int | None, lay: Layout, base: int, where: str, what: str) -> int:
    if i is None:
        raise StitchError(f"{where} has a {what} hole but no {what} step")
    return base + lay.code_offsets[i]
