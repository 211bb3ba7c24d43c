"""Layout and stitching, checked by decoding what they produce."""

from __future__ import annotations

import struct

import capstone
import pytest

from jit.codegen.step import Step
from jit.codegen.stitch import TRAMPOLINE_SIZE, StitchError, layout, stitch


def test_far_conditional_branch_goes_through_a_veneer(libraries):
    """cbz reaches 1 MiB: a branch back over 1.2 MB of code goes through x16."""
    lib = libraries["aarch64-linux"]
    filler = 300_000  # 4-byte drops: 1.2 MB of code
    steps = [Step("HALT")] + [Step("DROP")] * filler + [Step("PUSH_INT", 0), Step("JZ", target=0), Step("HALT")]
    lay = layout(lib, steps)
    base = 0x40_0000_0000
    out = stitch(lib, steps, lay, base, {})
    assert out.trampolines == 1
    md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    jz_at = lay.code_offsets[filler + 2]
    jz = list(md.disasm(out.code[jz_at : lay.code_offsets[filler + 3]], base + jz_at))[-1]
    assert jz.mnemonic == "cbz"
    veneer = int(jz.op_str.split("#")[-1], 16)
    assert veneer == base + lay.trampolines
    insns = list(md.disasm(out.code[lay.trampolines : lay.trampolines + 8], veneer))
    assert [(i.mnemonic, i.op_str) for i in insns] == [("ldr", f"x16, #{veneer + 8:#x}"), ("br", "x16")]
    (destination,) = struct.unpack_from("<Q", out.code, lay.trampolines + 8)
    assert destination == base


def test_branch_too_far_even_for_a_veneer_is_a_clear_error(libraries):
    lib = libraries["aarch64-linux"]
    filler = 300_000
    steps = [Step("PUSH_INT", 0), Step("JZ", target=filler + 2)] + [Step("DROP")] * filler + [Step("HALT")]
    with pytest.raises(StitchError, match=r"step 1 \(JZ\): R_AARCH64_CONDBR19: .* \(even through a trampoline\)"):
        stitch(lib, steps, layout(lib, steps), 0x40_0000_0000, {})


def test_far_helper_call_on_x86_goes_through_a_trampoline(libraries):
    lib = libraries["x86_64-linux"]
    steps = [Step("PUSH_INT", 7), Step("PRINT_INT"), Step("HALT")]
    lay = layout(lib, steps)
    base, helper = 0x10_0000_0000, 0x7F00_0000_1000
    out = stitch(lib, steps, lay, base, {"_JIT_HELPER_print_int": helper})
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    start, end = lay.code_offsets[1], lay.code_offsets[2]
    call = next(i for i in md.disasm(out.code[start:end], base + start) if i.mnemonic == "call")
    assert int(call.op_str, 16) == base + lay.trampolines
    assert out.code[lay.trampolines : lay.trampolines + 6] == b"\xff\x25\x00\x00\x00\x00"
    assert struct.unpack_from("<Q", out.code, lay.trampolines + 6)[0] == helper
    assert lay.trampoline_slots * TRAMPOLINE_SIZE >= 16


def test_near_helper_needs_no_trampoline(libraries):
    lib = libraries["x86_64-linux"]
    steps = [Step("PUSH_INT", 7), Step("PRINT_INT"), Step("HALT")]
    lay = layout(lib, steps)
    out = stitch(lib, steps, lay, 0x10_0000_0000, {"_JIT_HELPER_print_int": 0x10_0010_0000})
    assert out.trampolines == 0


def test_continuations_fall_through(libraries):
    """Straight-line steps are simply concatenated: no jumps between them."""
    for target, lib in libraries.items():
        steps = [Step("PUSH_INT", 1), Step("PUSH_INT", 2), Step("ADD"), Step("HALT")]
        lay = layout(lib, steps)
        out = stitch(lib, steps, lay, 0x1000_0000, {})
        expected_len = sum(len(lib.ops[s.op].code) for s in steps)
        assert lay.code_offsets[-1] == expected_len, target
        assert out.code[lay.code_offsets[2] : lay.code_offsets[3]] == lib.ops["ADD"].code
