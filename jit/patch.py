"""One patch function per relocation type: write a value into an instruction.

Each takes the code, the hole's offset, the value S + A (symbol plus addend)
and the place P (the hole's address), computes what the relocation type
says, range-checks it as a linker would, and rewrites only the bits that
the type owns.  Encodings follow the x86-64 psABI and Arm's "ELF for the
Arm 64-bit Architecture"; the tests check every type against ld.lld.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .errors import JitError


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


# -- x86-64 ------------------------------------------------------------------


def x86_64_abs64(code: bytearray, off: int, value: int, place: int) -> None:
    _u64(code, off, value)


def x86_64_pc64(code: bytearray, off: int, value: int, place: int) -> None:
    _u64(code, off, value - place)


def x86_64_pc32(code: bytearray, off: int, value: int, place: int, reloc: str = "R_X86_64_PC32") -> None:
    v = value - place
    _check_signed(reloc, v, 32)
    _u32(code, off, v)


def x86_64_plt32(code: bytearray, off: int, value: int, place: int) -> None:
    x86_64_pc32(code, off, value, place, "R_X86_64_PLT32")


def x86_64_abs32(code: bytearray, off: int, value: int, place: int) -> None:
    _check_unsigned("R_X86_64_32", value, 32)
    _u32(code, off, value)


def x86_64_abs32s(code: bytearray, off: int, value: int, place: int) -> None:
    _check_signed("R_X86_64_32S", value, 32)
    _u32(code, off, value)


# -- AArch64 -----------------------------------------------------------------


def _page(v: int) -> int:
    return v & ~0xFFF


def aarch64_abs64(code: bytearray, off: int, value: int, place: int) -> None:
    _u64(code, off, value)


def aarch64_abs32(code: bytearray, off: int, value: int, place: int) -> None:
    _check_either("R_AARCH64_ABS32", value, 32)
    _u32(code, off, value)


def aarch64_prel64(code: bytearray, off: int, value: int, place: int) -> None:
    _u64(code, off, value - place)


def aarch64_prel32(code: bytearray, off: int, value: int, place: int) -> None:
    v = value - place
    _check_either("R_AARCH64_PREL32", v, 32)
    _u32(code, off, v)


def _movw(shift: int, check_bits: int | None, reloc: str) -> Callable[[bytearray, int, int, int], None]:
    def patch(code: bytearray, off: int, value: int, place: int) -> None:
        v = value & 0xFFFFFFFFFFFFFFFF
        if check_bits is not None:
            _check_unsigned(reloc, v, check_bits)
        _insn(code, off, 0xFFFF << 5, ((v >> shift) & 0xFFFF) << 5)

    patch.__name__ = reloc.lower()
    patch.__doc__ = f"{reloc}: bits {shift + 15}:{shift} of S + A into a movz/movk."
    return patch


def _adr_bits(imm: int) -> int:
    return ((imm & 3) << 29) | (((imm >> 2) & 0x7FFFF) << 5)


_ADR_MASK = (3 << 29) | (0x7FFFF << 5)


def aarch64_adr_prel_lo21(code: bytearray, off: int, value: int, place: int) -> None:
    v = value - place
    _check_signed("R_AARCH64_ADR_PREL_LO21", v, 21)
    _insn(code, off, _ADR_MASK, _adr_bits(v))


def aarch64_adr_prel_pg_hi21(code: bytearray, off: int, value: int, place: int) -> None:
    v = _page(value) - _page(place)
    _check_signed("R_AARCH64_ADR_PREL_PG_HI21", v, 33)
    _insn(code, off, _ADR_MASK, _adr_bits(v >> 12))


def aarch64_add_abs_lo12_nc(code: bytearray, off: int, value: int, place: int) -> None:
    _insn(code, off, 0xFFF << 10, (value & 0xFFF) << 10)


def _ldst(size: int, reloc: str) -> Callable[[bytearray, int, int, int], None]:
    scale = size.bit_length() - 1

    def patch(code: bytearray, off: int, value: int, place: int) -> None:
        _check_aligned(reloc, value, size)
        _insn(code, off, 0xFFF << 10, ((value & 0xFFF) >> scale) << 10)

    patch.__name__ = reloc.lower()
    patch.__doc__ = f"{reloc}: the low 12 bits of S + A, scaled by {size}, into a load/store."
    return patch


def _branch(bits: int, field_mask: int, reloc: str) -> Callable[[bytearray, int, int, int], None]:
    def patch(code: bytearray, off: int, value: int, place: int) -> None:
        v = value - place
        _check_aligned(reloc, v, 4)
        _check_signed(reloc, v, bits)
        shift = (field_mask & -field_mask).bit_length() - 1
        _insn(code, off, field_mask, (v >> 2) << shift)

    patch.__name__ = reloc.lower()
    patch.__doc__ = f"{reloc}: S + A - P, a {bits}-bit signed byte offset, into a branch."
    return patch


PATCHERS: dict[str, Callable[[bytearray, int, int, int], None]] = {
    "R_X86_64_64": x86_64_abs64,
    "R_X86_64_PC64": x86_64_pc64,
    "R_X86_64_PC32": x86_64_pc32,
    "R_X86_64_PLT32": x86_64_plt32,
    "R_X86_64_32": x86_64_abs32,
    "R_X86_64_32S": x86_64_abs32s,
    "R_AARCH64_ABS64": aarch64_abs64,
    "R_AARCH64_ABS32": aarch64_abs32,
    "R_AARCH64_PREL64": aarch64_prel64,
    "R_AARCH64_PREL32": aarch64_prel32,
    "R_AARCH64_MOVW_UABS_G0": _movw(0, 16, "R_AARCH64_MOVW_UABS_G0"),
    "R_AARCH64_MOVW_UABS_G0_NC": _movw(0, None, "R_AARCH64_MOVW_UABS_G0_NC"),
    "R_AARCH64_MOVW_UABS_G1": _movw(16, 32, "R_AARCH64_MOVW_UABS_G1"),
    "R_AARCH64_MOVW_UABS_G1_NC": _movw(16, None, "R_AARCH64_MOVW_UABS_G1_NC"),
    "R_AARCH64_MOVW_UABS_G2": _movw(32, 48, "R_AARCH64_MOVW_UABS_G2"),
    "R_AARCH64_MOVW_UABS_G2_NC": _movw(32, None, "R_AARCH64_MOVW_UABS_G2_NC"),
    "R_AARCH64_MOVW_UABS_G3": _movw(48, None, "R_AARCH64_MOVW_UABS_G3"),
    "R_AARCH64_ADR_PREL_LO21": aarch64_adr_prel_lo21,
    "R_AARCH64_ADR_PREL_PG_HI21": aarch64_adr_prel_pg_hi21,
    "R_AARCH64_ADD_ABS_LO12_NC": aarch64_add_abs_lo12_nc,
    "R_AARCH64_LDST8_ABS_LO12_NC": _ldst(1, "R_AARCH64_LDST8_ABS_LO12_NC"),
    "R_AARCH64_LDST16_ABS_LO12_NC": _ldst(2, "R_AARCH64_LDST16_ABS_LO12_NC"),
    "R_AARCH64_LDST32_ABS_LO12_NC": _ldst(4, "R_AARCH64_LDST32_ABS_LO12_NC"),
    "R_AARCH64_LDST64_ABS_LO12_NC": _ldst(8, "R_AARCH64_LDST64_ABS_LO12_NC"),
    "R_AARCH64_LDST128_ABS_LO12_NC": _ldst(16, "R_AARCH64_LDST128_ABS_LO12_NC"),
    "R_AARCH64_TSTBR14": _branch(16, 0x3FFF << 5, "R_AARCH64_TSTBR14"),
    "R_AARCH64_CONDBR19": _branch(21, 0x7FFFF << 5, "R_AARCH64_CONDBR19"),
    "R_AARCH64_JUMP26": _branch(28, 0x3FFFFFF, "R_AARCH64_JUMP26"),
    "R_AARCH64_CALL26": _branch(28, 0x3FFFFFF, "R_AARCH64_CALL26"),
}

# Relocations of branches, which can reach a far target through a trampoline.
BRANCHES = frozenset(
    {
        "R_X86_64_PC32",
        "R_X86_64_PLT32",
        "R_AARCH64_TSTBR14",
        "R_AARCH64_CONDBR19",
        "R_AARCH64_JUMP26",
        "R_AARCH64_CALL26",
    }
)


def patch(code: bytearray, offset: int, reloc: str, value: int, place: int) -> None:
    """Apply relocation `reloc` at `offset` for S + A = value, P = place."""
    try:
        fn = PATCHERS[reloc]
    except KeyError:
        raise RelocationError(reloc, "no patch function for this relocation type", out_of_range=False) from None
    fn(code, offset, value, place)


def is_branch_instruction(target: str, code: bytes, offset: int, reloc: str) -> bool:
    """Whether the hole at `offset` is the displacement of a jump or call (so a
    trampoline can stand in for a far target)."""
    if reloc not in BRANCHES:
        return False
    if reloc.startswith("R_AARCH64"):
        return True
    # x86-64: e8 call rel32, e9 jmp rel32, 0f 80-8f jcc rel32.
    if offset >= 1 and code[offset - 1] in (0xE8, 0xE9):
        return True
    return offset >= 2 and code[offset - 2] == 0x0F and 0x80 <= code[offset - 1] <= 0x8F


def trampoline(target: str, destination: int) -> bytes:
    """16 bytes that jump to an absolute address (x86-64: jmp *0(%rip);
    AArch64: ldr x16, 8; br x16 — x16 is the intra-procedure scratch register)."""
    if target.startswith("x86_64"):
        return b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", destination) + b"\xcc\xcc"
    return struct.pack("<IIQ", 0x58000050, 0xD61F0200, destination)


def jump(target: str, place: int, destination: int) -> bytes:
    """The shortest unconditional jump from `place` to `destination`: a direct
    one where it reaches (x86-64 jmp rel32, AArch64 b), else a trampoline."""
    if target.startswith("x86_64"):
        rel = destination - (place + 5)
        if _signed_fits(rel, 32):
            return b"\xe9" + struct.pack("<i", rel)
    else:
        rel = destination - place
        if _signed_fits(rel, 28):
            return struct.pack("<I", 0x14000000 | ((rel >> 2) & 0x3FFFFFF))
    return trampoline(target, destination)
