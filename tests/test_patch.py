"""Each patch function on edge values, negative offsets, misalignment and out of range.

Expected encodings are worked out by hand from the x86-64 psABI and Arm's
ELF relocation tables (a few are the examples in lld's own tests).
"""

from __future__ import annotations

import struct

import capstone
import pytest

from jit.codegen.patch import PATCHERS, RelocationError, patch
from jit.targets import get_target


def word(value: int) -> bytearray:
    return bytearray(struct.pack("<I", value))


def read32(buf: bytearray, off: int = 0) -> int:
    return struct.unpack_from("<I", buf, off)[0]


def test_every_relocation_in_the_table_has_a_patch_function_or_is_rewritten():
    from jit.build import relocs
    from jit.build.relocs import Encoding

    for row in relocs.table():
        if row.encoding is Encoding.GOT:
            assert row.name not in PATCHERS and row.becomes in PATCHERS, row.name
        else:
            assert row.name in PATCHERS and row.becomes is None, row.name


# -- x86-64 -------------------------------------------------------------------


def test_abs64_writes_all_bits_and_wraps_negative_values():
    buf = bytearray(10)
    patch(buf, 2, "R_X86_64_64", -1, 0)
    assert buf == b"\0\0" + b"\xff" * 8
    patch(buf, 2, "R_X86_64_64", 0x1122334455667788, 0)
    assert buf[2:] == bytes.fromhex("8877665544332211")


@pytest.mark.parametrize("reloc", ["R_X86_64_PC32", "R_X86_64_PLT32"])
def test_pc32_limits_and_negative_offsets(reloc):
    buf = bytearray(4)
    place = 0x1000_0000
    patch(buf, 0, reloc, place + (1 << 31) - 1, place)
    assert buf == b"\xff\xff\xff\x7f"
    patch(buf, 0, reloc, place - (1 << 31), place)
    assert buf == b"\x00\x00\x00\x80"
    patch(buf, 0, reloc, place - 4, place)
    assert buf == b"\xfc\xff\xff\xff"
    for bad in (place + (1 << 31), place - (1 << 31) - 1):
        with pytest.raises(RelocationError, match="does not fit in 32 signed bits") as info:
            patch(buf, 0, reloc, bad, place)
        assert info.value.out_of_range


def test_abs32_and_abs32s_ranges():
    buf = bytearray(4)
    patch(buf, 0, "R_X86_64_32", 0xFFFFFFFF, 0)
    assert buf == b"\xff" * 4
    with pytest.raises(RelocationError):
        patch(buf, 0, "R_X86_64_32", 1 << 32, 0)
    with pytest.raises(RelocationError):
        patch(buf, 0, "R_X86_64_32", -1, 0)
    patch(buf, 0, "R_X86_64_32S", -(1 << 31), 0)
    assert buf == b"\0\0\0\x80"
    with pytest.raises(RelocationError):
        patch(buf, 0, "R_X86_64_32S", 1 << 31, 0)


def test_branch_recognition_on_x86():
    code = bytes.fromhex("e800000000e9000000000f8400000000f20f100500000000")
    assert get_target("x86_64-linux").is_branch_instruction(code, 1, "R_X86_64_PLT32")  # call
    assert get_target("x86_64-linux").is_branch_instruction(code, 6, "R_X86_64_PLT32")  # jmp
    assert get_target("x86_64-linux").is_branch_instruction(code, 12, "R_X86_64_PC32")  # je
    assert not get_target("x86_64-linux").is_branch_instruction(code, 20, "R_X86_64_PC32")  # movsd (%rip)
    assert not get_target("x86_64-linux").is_branch_instruction(code, 1, "R_X86_64_64")


# -- AArch64 ------------------------------------------------------------------

MOVZ_X8 = 0xD2800008  # movz x8, #0
MOVK_X8_16 = 0xF2A00008  # movk x8, #0, lsl #16


@pytest.mark.parametrize(
    ("reloc", "shift"),
    [
        ("R_AARCH64_MOVW_UABS_G0_NC", 0),
        ("R_AARCH64_MOVW_UABS_G1_NC", 16),
        ("R_AARCH64_MOVW_UABS_G2_NC", 32),
        ("R_AARCH64_MOVW_UABS_G3", 48),
    ],
)
def test_movw_inserts_sixteen_bits_and_keeps_the_rest(reloc, shift):
    buf = word(MOVK_X8_16)
    value = 0xFEDC_BA98_7654_3210
    patch(buf, 0, reloc, value, 0)
    assert read32(buf) == MOVK_X8_16 | (((value >> shift) & 0xFFFF) << 5)


def test_checked_movw_groups_refuse_wide_values():
    buf = word(MOVZ_X8)
    patch(buf, 0, "R_AARCH64_MOVW_UABS_G0", 0xFFFF, 0)
    assert read32(buf) == MOVZ_X8 | (0xFFFF << 5)
    with pytest.raises(RelocationError, match="16 unsigned bits"):
        patch(buf, 0, "R_AARCH64_MOVW_UABS_G0", 0x10000, 0)
    with pytest.raises(RelocationError, match="32 unsigned bits"):
        patch(buf, 0, "R_AARCH64_MOVW_UABS_G1", 1 << 32, 0)
    with pytest.raises(RelocationError, match="48 unsigned bits"):
        patch(buf, 0, "R_AARCH64_MOVW_UABS_G2", 1 << 48, 0)


def test_adr_splits_the_offset():
    buf = word(0x10000001)  # adr x1, #0
    patch(buf, 0, "R_AARCH64_ADR_PREL_LO21", 0x1004, 0x1000)
    assert read32(buf) == 0x10000021  # adr x1, #4
    patch(buf, 0, "R_AARCH64_ADR_PREL_LO21", 0x1000 - 1, 0x1000)
    assert read32(buf) == 0x10000001 | (3 << 29) | (0x7FFFF << 5)  # adr x1, #-1
    with pytest.raises(RelocationError):
        patch(buf, 0, "R_AARCH64_ADR_PREL_LO21", 0x1000 + (1 << 20), 0x1000)


def test_adrp_uses_pages():
    buf = word(0x90000001)  # adrp x1, 0
    patch(buf, 0, "R_AARCH64_ADR_PREL_PG_HI21", 0x11016, 0x11012)
    assert read32(buf) == 0x90000001
    patch(buf, 0, "R_AARCH64_ADR_PREL_PG_HI21", 0x5FFF, 0x1000)
    assert read32(buf) == 0x90000001 | (1 << 5) | (0 << 29)  # 4 pages: immlo 0, immhi 1
    patch(buf, 0, "R_AARCH64_ADR_PREL_PG_HI21", 0x0, 0x3000)
    assert read32(buf) == 0x90000001 | (1 << 29) | (0x7FFFF << 5)  # -3 pages
    with pytest.raises(RelocationError):
        patch(buf, 0, "R_AARCH64_ADR_PREL_PG_HI21", 1 << 33, 0)


def test_lo12_add_and_scaled_loads():
    buf = word(0x91000000)  # add x0, x0, #0
    patch(buf, 0, "R_AARCH64_ADD_ABS_LO12_NC", 0x1101F, 0)
    assert read32(buf) == 0x91007C00  # add x0, x0, #31
    buf = word(0xF940037C)  # ldr x28, [x27]
    patch(buf, 0, "R_AARCH64_LDST64_ABS_LO12_NC", 0x11028, 0)
    assert read32(buf) == 0xF940177C  # ldr x28, [x27, #40]
    with pytest.raises(RelocationError, match="not a multiple of 8") as info:
        patch(buf, 0, "R_AARCH64_LDST64_ABS_LO12_NC", 0x11024, 0)
    assert not info.value.out_of_range
    buf = word(0x3DC00000)  # ldr q0, [x0]
    patch(buf, 0, "R_AARCH64_LDST128_ABS_LO12_NC", 0x7F0, 0)
    assert read32(buf) == 0x3DC00000 | ((0x7F0 >> 4) << 10)
    with pytest.raises(RelocationError, match="multiple of 16"):
        patch(buf, 0, "R_AARCH64_LDST128_ABS_LO12_NC", 0x7F8, 0)
    for size, reloc in ((1, "LDST8"), (2, "LDST16"), (4, "LDST32")):
        buf = word(0x39400000)
        patch(buf, 0, f"R_AARCH64_{reloc}_ABS_LO12_NC", 0xFFF // size * size, 0)
        assert (read32(buf) >> 10) & 0xFFF == 0xFFF // size


@pytest.mark.parametrize(
    ("reloc", "insn", "reach"),
    [
        ("R_AARCH64_TSTBR14", 0x36000000, 1 << 15),  # tbz w0, #0
        ("R_AARCH64_CONDBR19", 0x54000000, 1 << 20),  # b.eq
        ("R_AARCH64_JUMP26", 0x14000000, 1 << 27),  # b
        ("R_AARCH64_CALL26", 0x94000000, 1 << 27),  # bl
    ],
)
def test_branches_reach_misalignment_and_range(reloc, insn, reach):
    place = 0x4000_0000
    buf = word(insn)
    patch(buf, 0, reloc, place + reach - 4, place)
    patch(buf, 0, reloc, place - reach, place)
    patch(buf, 0, reloc, place - 4, place)
    decoded = next(capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM).disasm(bytes(buf), place))
    assert int(decoded.op_str.split("#")[-1], 16) == place - 4
    with pytest.raises(RelocationError, match="multiple of 4"):
        patch(buf, 0, reloc, place + 2, place)
    for bad in (place + reach, place - reach - 4):
        with pytest.raises(RelocationError, match="signed bits") as info:
            patch(buf, 0, reloc, bad, place)
        assert info.value.out_of_range


def test_call26_matches_lld_example():
    buf = word(0x94000000)
    patch(buf, 0, "R_AARCH64_CALL26", 0x1102C, 0x11030)  # bl back one instruction
    assert read32(buf) == 0x97FFFFFF


def test_prel32_and_abs32_take_signed_or_unsigned():
    buf = bytearray(4)
    patch(buf, 0, "R_AARCH64_PREL32", 0x1000 - 8, 0x1000)
    assert buf == b"\xf8\xff\xff\xff"
    patch(buf, 0, "R_AARCH64_ABS32", 0xFFFFFFFF, 0)
    with pytest.raises(RelocationError):
        patch(buf, 0, "R_AARCH64_ABS32", 1 << 32, 0)


def test_unknown_relocation_is_a_clear_error():
    with pytest.raises(RelocationError, match="R_X86_64_GOTTPOFF: no patch function"):
        patch(bytearray(4), 0, "R_X86_64_GOTTPOFF", 0, 0)


@pytest.mark.parametrize("target", ["x86_64-linux", "aarch64-linux"])
def test_trampolines_jump_to_an_absolute_address(target):
    destination = 0x1234_5678_9ABC
    code = get_target(target).trampoline(destination)
    assert len(code) == 16
    if target.startswith("x86"):
        insn = next(capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64).disasm(code, 0))
        assert (insn.mnemonic, insn.op_str) == ("jmp", "qword ptr [rip]")
        assert struct.unpack_from("<Q", code, 6)[0] == destination
    else:
        insns = list(capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM).disasm(code[:8], 0))
        assert [(i.mnemonic, i.op_str) for i in insns] == [("ldr", "x16, #8"), ("br", "x16")]
        assert struct.unpack_from("<Q", code, 8)[0] == destination


@pytest.mark.parametrize("target", ["x86_64-linux", "aarch64-linux"])
def test_links_jump_where_they_say_in_python_and_in_c(target):
    """Target.jump (the controller's links) and jit_write_jump (the loop in
    C's), from one description of the jump: the same bytes, which capstone
    reads as a direct jump to the destination; beyond the jump's reach,
    Python writes a trampoline and C declines."""
    from jit.build.hostlib import hostlib
    from jit.codegen.cstitch import _target_plan

    t = get_target(target)
    ffi, lib = hostlib()
    plan = _target_plan(ffi, t)
    reach = 1 << 31 if target.startswith("x86") else 1 << 27
    out = ffi.new("uint8_t[]", 8)
    place = int(ffi.cast("uintptr_t", out)) & ~7  # (C flushes the instruction cache there: a real address)
    md = capstone.Cs(*t.capstone_mode())
    for destination in (place + 0x40, place - 0x1000, place + reach - 0x1000, place - reach + 0x1000):
        code = t.jump(place, destination)
        insn = next(md.disasm(code, place))
        assert insn.mnemonic in ("jmp", "b") and int(insn.op_str.lstrip("#"), 16) == destination
        assert lib.jit_write_jump(plan, out, place, destination) == len(code) == len(t.link_jump)
        assert bytes(ffi.buffer(out, len(code))) == code
    for destination in (place + reach + 0x1000, place - reach - 0x1000):
        assert t.jump(place, destination) == t.trampoline(destination)
        assert lib.jit_write_jump(plan, out, place, destination) == 0
