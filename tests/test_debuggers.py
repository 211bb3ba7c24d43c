"""Debuggers and profilers see JIT code: GDB's JIT interface and perf's jitdump, checked with the real tools.

The in-memory ELF objects are read back by llvm-dwarfdump and llvm-readelf;
gdb (batch mode) breaks in a helper called from a trace and must name the
trace and the .uop line; the jitdump is parsed by our reader and its code
compared with the memory it describes; perf, where it can record here,
turns the dump into symbols and source lines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import jit
from jit.build.hostlib import hostlib
from jit.paths import PROGRAMS_DIR, ROOT
from jit.runtime import jitdump
from jit.runtime.codeinfo import describe
from jit.runtime.gdbjit import elf_object
from jit.targets import host_target

HOST = host_target()
pytestmark = pytest.mark.skipif(HOST is None, reason="JIT code runs natively only on a host with a native target")

# Prints every number below its argument: after 50 back-edges the loop runs
# as a trace, and print_int is called from the trace's code.
LOOP = """\
# prints every number below the argument
.args 1
.func main locals=1
    arg 0
    store 0
loop:
    load 0
    jz done
    load 0
    print_int
    print_str "\\n"
    load 0
    push_int 1
    sub
    store 0
    jump loop
done:
    halt
"""
PRINT_LINE = 10  # the line of print_int above


@pytest.fixture
def loop_file(tmp_path) -> Path:
    path = tmp_path / "loop.uop"
    path.write_text(LOOP)
    return path


def compiled_pieces(program, config, args):
    """Run tiered; each piece of code as compiled: (its description, the memory it occupies then)."""
    ffi, _ = hostlib()
    seen = []

    def on_compile(code, shape, side) -> None:
        info = describe(code, program, shape.start_pc, "side" if side else "loop")
        memory = bytes(ffi.buffer(ffi.cast("char *", code.address(0)), len(info.code)))
        seen.append((info, memory))

    result = jit.run(program, args, config=config, on_compile=on_compile)
    assert result.status == "halted", result.error
    return seen


def test_the_gdb_object_has_symbols_and_a_line_table_real_tools_read(loop_file, tmp_path):
    program = jit.load(loop_file)
    ((info, _),) = compiled_pieces(program, jit.TierConfig(), [100])
    obj = tmp_path / "trace.o"
    obj.write_bytes(elf_object(info, HOST))
    symbols = subprocess.run(["llvm-readelf-19", "-s", str(obj)], capture_output=True, text=True, check=True).stdout
    assert info.name in symbols and f"jit:loop.uop:{PRINT_LINE}:print_int" in symbols
    lines = subprocess.run(
        ["llvm-dwarfdump-19", "--debug-line", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    rows = [r.split() for r in lines.splitlines() if r.startswith("0x0000")]
    table = {int(r[0], 16): int(r[1]) for r in rows if "end_sequence" not in r}  # (later rows win, as in gdb)
    assert table == {info.address + s.offset: s.line for s in info.steps}
    assert int(rows[-1][0], 16) == info.address + info.code_size and "end_sequence" in rows[-1]
    info_dump = subprocess.run(
        ["llvm-dwarfdump-19", "--debug-info", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    assert f'DW_AT_name\t("{info.name}")' in info_dump and 'DW_AT_name\t("loop.uop")' in info_dump


def test_gdb_registration_is_withdrawn_when_the_code_is_freed(loop_file):
    ffi, lib = hostlib()
    program = jit.load(loop_file)
    during = []
    jit.run(
        program,
        [100],
        config=jit.TierConfig(gdb=True),
        on_compile=lambda *_: during.append(lib.__jit_debug_descriptor.first_entry != ffi.NULL),
    )
    assert during == [True]
    assert lib.__jit_debug_descriptor.first_entry == ffi.NULL


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed (setup.sh installs it)")
def test_a_gdb_backtrace_from_a_helper_names_the_trace_and_its_uop_line(loop_file):
    script = [
        "set breakpoint pending on",
        "break __jit_debug_register_code",  # (the first trace is registered: from here, prints come from it)
        "run",
        "delete",
        "break print_int",
        "continue",
        "bt 2",
        "frame 1",
        "disassemble",
    ]
    argv = [sys.executable, "-m", "jit", "run", str(loop_file), "200", "--gdb"]
    command = ["gdb", "-q", "-nx", "-batch", *(a for line in script for a in ("-ex", line)), "--args", *argv]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    frame = next((line for line in out.stdout.splitlines() if line.startswith("#1 ")), "")
    assert "in jit:loop.uop:7:loop ()" in frame and f"at {loop_file.name}:{PRINT_LINE}" in frame, out.stdout
    assert f"code for function jit:loop.uop:{PRINT_LINE}:print_int" in out.stdout  # disassemble names the step
    assert "=> " in out.stdout  # and marks where the call returns to


def test_the_jitdump_holds_every_piece_with_the_bytes_in_memory_and_its_lines():
    program = jit.load(PROGRAMS_DIR / "mandelbrot.uop")
    pieces = compiled_pieces(program, jit.TierConfig(perf_jitdump=True), [40])
    machine, loads = jitdump.read(f"/tmp/jit-{os.getpid()}.dump")
    assert machine == {"x86_64-linux": 62, "aarch64-linux": 183}[HOST]
    mine = [load for load in loads if load.address in {info.address for info, _ in pieces}]
    assert len(mine) == len(pieces) >= 3
    for (info, memory), load in zip(pieces, mine[-len(pieces) :], strict=True):
        assert (load.name, load.address, load.code) == (info.name, info.address, memory)
        assert [(a - info.address, line) for a, line, _ in load.lines] == [(s.offset, s.line) for s in info.steps]
        assert {f for _, _, f in load.lines} == {str(PROGRAMS_DIR / "mandelbrot.uop")}
    # and, apart from what described them, by the parser: every line is one holding an instruction
    holding = {i.line for i in program.code}
    assert all(line in holding for load in mine for _, line, _ in load.lines)


def test_a_damaged_jitdump_is_refused(tmp_path):
    path = tmp_path / "jit-1.dump"
    path.write_bytes(b"JiTD" + bytes(36))
    with pytest.raises(ValueError, match="not a jitdump"):
        jitdump.read(path)


def _perf_can_record(tmp_path) -> bool:
    if shutil.which("perf") is None:
        return False
    out = subprocess.run(["perf", "record", "-q", "-o", str(tmp_path / "probe.data"), "--", "true"],
                         capture_output=True, check=False)  # fmt: skip
    return out.returncode == 0


def test_perf_inject_turns_the_jitdump_into_symbols_and_uop_lines(tmp_path):
    if not _perf_can_record(tmp_path):
        pytest.skip("perf cannot record here (not installed, or perf_event_paranoid forbids it)")
    data = tmp_path / "perf.data"
    run = [sys.executable, "-m", "jit", "run", str(PROGRAMS_DIR / "mandelbrot.uop"), "300", "--perf-jitdump"]
    subprocess.run(["perf", "record", "-q", "-k", "mono", "-o", str(data), "--", *run], check=True,
                   capture_output=True, cwd=tmp_path)  # fmt: skip
    injected = tmp_path / "perf.jit.data"
    subprocess.run(["perf", "inject", "--jit", "-i", str(data), "-o", str(injected)], check=True, capture_output=True)
    report = ["perf", "report", "-i", str(injected), "--stdio", "--sort"]
    symbols = subprocess.run([*report, "sym"], capture_output=True, text=True, check=True).stdout
    assert "jit:mandelbrot.uop:" in symbols
    lines = subprocess.run([*report, "srcline"], capture_output=True, text=True, check=True).stdout
    assert "mandelbrot.uop:" in lines
