"""AArch64 (and x86-64) machine code under emulation, checked against the
known outputs, the interpreters, and native execution of the same code."""

from __future__ import annotations

import hashlib
import struct

import pytest

from jit.codegen.trace import program_steps
from jit.lang.uop import parse, parse_file
from jit.paths import ROOT
from jit.runtime.cinterp import NativeVM
from jit.runtime.emulate import EmulationError, Emulator, prepare_emulated_eager
from jit.runtime.native import native_runtime
from jit.runtime.tiering import TierConfig, prepare_tiered

PROGRAMS = ROOT / "bench" / "programs"
KNOWN = [
    ("nbody", 1000, b"-0.169075164\n-0.169087605\n"),
    ("fannkuch", 7, b"228\nPfannkuchen(7) = 16\n"),
    ("spectralnorm", 100, b"1.274219991\n"),
    ("mandelbrot", 200, "cc65e64bd553ed18896de1dfe7fae3e5"),
]


def check(output: bytes, expected) -> None:
    if isinstance(expected, str):
        assert (len(output), hashlib.md5(output).hexdigest()) == (5011, expected)
    else:
        assert output == expected


@pytest.mark.parametrize("mode", ["eager", "tiered"])
@pytest.mark.parametrize(("name", "arg", "expected"), KNOWN, ids=[k[0] for k in KNOWN])
def test_benchmarks_on_emulated_aarch64(name, arg, expected, mode):
    program = parse_file(PROGRAMS / f"{name}.uop")
    if mode == "eager":
        outcome = prepare_emulated_eager(program, [arg], "aarch64-linux")()
    else:
        runner = prepare_tiered(program, [arg], TierConfig(accounting=True), target="aarch64-linux")
        outcome = runner()
        assert runner.stats.traces >= 1 and runner.stats.trace_share > 0.9
    assert outcome.status == "halted"
    check(outcome.output, expected)


def native_snapshot(program, args):
    rt = native_runtime()
    compiled = rt.compile(program_steps(program))
    vm = NativeVM.create(program, args)
    try:
        rt.enter(vm.state, compiled.address(0))
        st = vm.state
        depth = st.sp - vm.stack
        stack = [vm.stack[k].i for k in range(depth)]
        memory = [st.mem[k].i for k in range(program.memory)]
        return vm.outcome(), stack, memory, (st.status, st.pc, st.error, st.depth)
    finally:
        vm.close()
        compiled.free()


def emulated_snapshot(program, args):
    emu = Emulator("x86_64-linux", program, args)
    emu.enter(emu.compile(program_steps(program)).address(0))
    outcome = emu.outcome()
    return outcome, emu.stack(), emu.memory(), tuple(emu.get(f) for f in ("status", "pc", "error", "depth"))


STATE_PROGRAMS = [
    ("nbody", [200]),
    ("sieve", [5000]),
    ("fannkuch", [6]),
]


@pytest.mark.parametrize(("name", "args"), STATE_PROGRAMS, ids=[p[0] for p in STATE_PROGRAMS])
def test_emulated_x86_matches_native_x86_in_output_and_state(name, args):
    program = parse_file(PROGRAMS / f"{name}.uop")
    native = native_snapshot(program, args)
    emulated = emulated_snapshot(program, args)
    assert emulated == native
    assert any(native[2]) or not program.memory  # the memory really was compared


def test_emulated_and_native_state_agree_after_an_error():
    program = parse(".memory 3\n.func main locals=2\n push_int 7\n store 1\n push_int 3\n push_int 5\n mstore\n halt\n")
    native = native_snapshot(program, [])
    assert native[0].status == "error"
    assert emulated_snapshot(program, []) == native


def test_tiered_emulated_x86_matches_native_tiered():
    program = parse_file(PROGRAMS / "spectralnorm.uop")
    config = TierConfig(hot_loop=3, hot_exit=2, accounting=True)
    native = prepare_tiered(program, [30], config)
    emulated = prepare_tiered(program, [30], config, target="x86_64-linux", emulate=True)
    assert emulated() == native()
    for field in ("hot_loops", "traces", "side_traces", "linked", "uops_compiled", "side_exits", "trace_ops"):
        assert getattr(emulated.stats, field) == getattr(native.stats, field), field


def test_patched_code_is_what_runs():
    """Code rewritten in the emulator is re-translated, as after an icache flush."""
    program = parse(".func main\n push_int 1\n print_int\n halt\n")
    emu = Emulator("aarch64-linux", program, [])
    code = emu.compile(program_steps(program))
    emu.enter(code.address(0))
    assert bytes(emu.out) == b"1"
    # Re-patch the operand of push_int (a movz/movk chain) to 7, and run again.
    at = code.address(0)
    word = struct.unpack("<I", emu.uc.mem_read(at, 4))[0]
    emu.write_code(at, struct.pack("<I", (word & ~(0xFFFF << 5)) | (7 << 5)))
    emu.put("sp", emu.get("fp"))
    emu.enter(code.address(0))
    assert bytes(emu.out) == b"17"


def test_a_fault_in_emulated_code_is_an_error_not_a_crash():
    program = parse(".func main\n halt\n")
    emu = Emulator("aarch64-linux", program, [])
    bad = emu.load(struct.pack("<I", 0xF940_0000 | (1 << 5)))  # ldr x0, [x1]: x1 holds garbage
    emu.uc.reg_write(__import__("unicorn").arm64_const.UC_ARM64_REG_X1, 0xDEAD_0000_0000)
    with pytest.raises(EmulationError, match="faulted at"):
        emu.enter(bad)
