"""Patching a hole: write a value into an instruction, as its relocation type says.

One encoder per encoding of the relocation table (stencils/relocs.def),
parameterised by its row; PATCHERS binds each type to its row.  A patch
takes the code, the hole's offset, the value S + A (symbol plus addend) and
the place P (the hole's address), computes what the type says, range-checks
it as a linker would, and rewrites only the bits that the type owns.
Encodings follow the x86-64 psABI and Arm's "ELF for the Arm 64-bit
Architecture"; the tests check every type against ld.lld.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..build import relocs
from ..build.relocs import Encoding, Relocation
from ..errors import JitError


class RelocationError(JitError):
    """A value that does not fit its relocation (out of range or misaligned)."""

    def __init__(self, reloc: str, what: str, *, out_of_range: bool = True) -> None:
        super().__init__(f"{reloc}: {what}")
        self.reloc = reloc
        self.out_of_range = out_of_range


def _signed_fits(v: int, bits: int) -> bool:
    return -(1 << (bits - 1)) <= v < (1 << (bits - 1))


def _check_signed(reloc: str, v: int, bits: int) -> None:
    if not _signed_fits(v, bits):
        raise RelocationError(reloc, f"{v:#x} does not fit in {bits} signed bits")


def _check_unsigned(reloc: str, v: int, bits: int) -> None:
    if not 0 <= v < (1 << bits):
        raise RelocationError(reloc, f"{v:#x} does not fit in {bits} unsigned bits")


def _check_either(reloc: str, v: int, bits: int) -> None:
    if not -(1 << (bits - 1)) <= v < (1 << bits):
        raise RelocationError(reloc, f"{v:#x} does not fit in {bits} bits")


def _check_aligned(reloc: str, v: int, align: int) -> None:
    if v % align:
        raise RelocationError(reloc, f"{v:#x} is not a multiple of {align}", out_of_range=False)


def _u64(code: bytearray, off: int, v: int) -> None:
    struct.pack_into("<Q", code, off, v & 0xFFFFFFFFFFFFFFFF)


def _u32(code: bytearray, off: int, v: int) -> None:
    struct.pack_into("<I", code, off, v & 0xFFFFFFFF)


def _insn(code: bytearray, off: int, mask: int, bits: int) -> None:
    """Replace the bits of the 32-bit instruction at `off` selected by mask."""
    (word,) = struct.unpack_from("<I", code, off)
    _u32(code, off, (word & ~mask) | (bits & mask))


# -- one encoder per encoding (stencils/relocs.def says what each does) ---------------

PatchFn = Callable[[bytearray, int, int, int], None]
Encoder = Callable[[Relocation, bytearray, int, int, int], None]


def _abs(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    (_u64 if r.bits == 64 else _u32)(code, off, value)


def _abs_u(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    _check_unsigned(r.name, value, r.bits)
    _u32(code, off, value)


def _abs_s(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    _check_signed(r.name, value, r.bits)
    _u32(code, off, value)


def _abs_x(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    _check_either(r.name, value, r.bits)
    _u32(code, off, value)


def _prel(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    (_u64 if r.bits == 64 else _u32)(code, off, value - place)


def _prel_s(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    _abs_s(r, code, off, value - place, place)


def _prel_x(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    _abs_x(r, code, off, value - place, place)


def _movw(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    v = value & 0xFFFFFFFFFFFFFFFF
    if r.bits:
        _check_unsigned(r.name, v, r.bits)
    _insn(code, off, 0xFFFF << 5, ((v >> r.shift) & 0xFFFF) << 5)


def _adr_bits(imm: int) -> int:
    return ((imm & 3) << 29) | (((imm >> 2) & 0x7FFFF) << 5)


_ADR_MASK = (3 << 29) | (0x7FFFF << 5)


def _adr(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    v = value - place
    _check_signed(r.name, v, r.bits)
    _insn(code, off, _ADR_MASK, _adr_bits(v))


def _page(v: int) -> int:
    return v & ~0xFFF


def _adrp(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    v = _page(value) - _page(place)
    _check_signed(r.name, v, r.bits)
    _insn(code, off, _ADR_MASK, _adr_bits(v >> 12))


def _lo12(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    _check_aligned(r.name, value, 1 << r.shift)
    _insn(code, off, 0xFFF << 10, ((value & 0xFFF) >> r.shift) << 10)


def _branch(r: Relocation, code: bytearray, off: int, value: int, place: int) -> None:
    v = value - place
    _check_aligned(r.name, v, 4)
    _check_signed(r.name, v, r.bits)
    field = ((1 << (r.bits - 2)) - 1) << r.shift
    _insn(code, off, field, (v >> 2) << r.shift)


ENCODERS: dict[Encoding, Encoder] = {
    Encoding.ABS: _abs,
    Encoding.ABS_U: _abs_u,
    Encoding.ABS_S: _abs_s,
    Encoding.ABS_X: _abs_x,
    Encoding.PREL: _prel,
    Encoding.PREL_S: _prel_s,
    Encoding.PREL_X: _prel_x,
    Encoding.MOVW: _movw,
    Encoding.ADR: _adr,
    Encoding.ADRP: _adrp,
    Encoding.LO12: _lo12,
    Encoding.BRANCH: _branch,
}


def _bind(r: Relocation) -> PatchFn:
    encode = ENCODERS[r.encoding]

    def patch_fn(code: bytearray, off: int, value: int, place: int) -> None:
        encode(r, code, off, value, place)

    patch_fn.__name__ = r.name.lower()
    patch_fn.__doc__ = f"{r.name}: {r.encoding.value} ({r.bits} bits, shift {r.shift})."
    return patch_fn


# Every patchable type's patch function (GOT references are rewritten at build time).
PATCHERS: dict[str, PatchFn] = {r.name: _bind(r) for r in relocs.table() if r.encoding is not Encoding.GOT}


def patch(code: bytearray, offset: int, reloc: str, value: int, place: int) -> None:
    """Apply relocation `reloc` at `offset` for S + A = value, P = place."""
    try:
        fn = PATCHERS[reloc]
    except KeyError:
        raise RelocationError(reloc, "no patch function for this relocation type", out_of_range=False) from None
    fn(code, offset, value, place)
