"""`python -m jit stencils`: disassembly with every hole named, and the JSON dump."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from jit.paths import ROOT
from jit.tools.disasm import disassemble


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jit", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_every_hole_is_named_on_its_instruction(library, target):
    for stencil in [library.shim, *library.ops.values()]:
        lines = disassemble(target, stencil.code, stencil.holes)
        starts = [int(line.split(":")[0], 16) for line in lines]
        if not stencil.code:  # e.g. DROP_10: the dropped top was only in a register
            assert not lines and not stencil.holes, stencil.name
            continue
        assert starts[0] == 0
        for hole in stencil.holes:
            # The instruction that contains the hole is the last one starting at or before it.
            index = max(i for i, s in enumerate(starts) if s <= hole.offset)
            assert hole.describe() in lines[index], (stencil.name, hole, lines[index])
        shown = 0
        for line in lines:
            for token in line.split(":", 1)[1].split():
                if not re.fullmatch(r"[0-9a-f]{2}", token):
                    break
                shown += 1
        assert shown == len(stencil.code)  # every byte shown once


def test_disassembly_from_the_command_line(target):
    out = run("stencils", "--target", target, "--op", "jz")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"JZ ({target}):")
    assert "_JIT_TARGET" in out.stdout and "note:" in out.stdout
    reloc = "R_X86_64_PLT32" if target.startswith("x86") else "R_AARCH64_CONDBR19"
    assert re.search(rf"\b(je|cbz)\b.*; {reloc} _JIT_TARGET", out.stdout)


def test_whole_library_dump(target, library):
    out = run("stencils", "--target", target)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(f"({target}):") == len(library.ops) + 1


def test_json_dump_matches_the_library(target, library):
    out = run("stencils", "--target", target, "--json")
    assert out.returncode == 0, out.stderr
    dumped = json.loads(out.stdout)[target]
    assert [s["name"] for s in dumped["ops"]] == list(library.ops)
    for entry in dumped["ops"]:
        stencil = library.ops[entry["name"]]
        assert bytes.fromhex(entry["code"]) == stencil.code
        assert bytes.fromhex(entry["data"]) == stencil.data
        assert [(h["offset"], h["reloc"], h["kind"], h["symbol"], h["addend"]) for h in entry["holes"]] == [
            (h.offset, h.reloc, h.kind.value, h.symbol, h.addend) for h in stencil.holes
        ]


def test_unknown_op_is_a_usage_error():
    out = run("stencils", "--op", "frobnicate")
    assert out.returncode == 2
    assert out.stderr.startswith("error: unknown op 'frobnicate'")
    assert "Traceback" not in out.stderr


def test_run_prints_only_the_program_output(tmp_path):
    for engine in ("py", "switch", "tailcall"):
        out = run("run", "bench/programs/fib.uop", "15", "--engine", engine)
        assert (out.returncode, out.stdout, out.stderr) == (0, "610\n", "")


def test_run_runtime_error_exits_1(tmp_path):
    prog = tmp_path / "boom.uop"
    prog.write_text('.memory 2\n.func main\n print_str "x"\n push_int 2\n mload\n halt\n')
    out = run("run", str(prog), "--engine", "tailcall")
    assert out.returncode == 1
    assert out.stdout == "x"
    assert out.stderr == f"{prog}:5: mload: memory index 2 out of range (memory has 2 slots)\n"


def test_run_bad_program_exits_2(tmp_path):
    prog = tmp_path / "bad.uop"
    prog.write_text(".func main\n push_int 1\n frob\n")
    out = run("run", str(prog))
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        f"{prog}:3:2: unknown op 'frob'",
    ]


def test_run_bad_arguments_exit_2():
    for args in ([], ["1", "2"], ["ten"], [str(1 << 63)]):
        out = run("run", "bench/programs/fib.uop", *args)
        assert out.returncode == 2, args
        assert out.stderr.startswith("error: bench/programs/fib.uop: ") and "Traceback" not in out.stderr


def test_a_target_can_be_named_by_its_machine():
    """`--target aarch64` is aarch64-linux (as `uname -m` says it), in the CLI and the API."""
    import jit
    from jit.targets import target_name

    assert [target_name(n) for n in ("aarch64", "arm64", "x86_64", "amd64")] == [
        "aarch64-linux", "aarch64-linux", "x86_64-linux", "x86_64-linux",
    ]  # fmt: skip
    short, full = (run("stencils", "--op", "halt", "--target", t) for t in ("aarch64", "aarch64-linux"))
    assert (short.returncode, short.stdout) == (0, full.stdout) and "HALT (aarch64-linux)" in short.stdout
    out = run("run", "bench/programs/fib.uop", "10", "--target", "arm64")
    assert (out.returncode, out.stdout) == (0, "55\n")
    out = run("run", "--opset", "ebpf", "tests/ebpf/alu64.data", "--target", "aarch64")
    assert (out.returncode, out.stdout) == (0, "0x10000000003\n")
    out = run("run", "bench/programs/fib.uop", "10", "--target", "sparc")
    assert out.returncode == 2 and "unknown target 'sparc'; targets are x86_64-linux (x86_64/amd64)" in out.stderr
    result = jit.run(jit.load(ROOT / "bench" / "programs" / "fib.uop"), [10], target="aarch64")
    assert result.output == b"55\n"
