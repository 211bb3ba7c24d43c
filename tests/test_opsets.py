"""Bring your own VM: an op set from a directory outside the package.

examples/accumulator is copied to a temporary directory, and everything is
done to it through the command line, as a user would: its stencils built
for both targets, validated against its reference, run on every engine.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from jit.build.library import library_path
from jit.opsets import load
from jit.tools.cli import main

EXAMPLE = Path(__file__).parent.parent / "examples" / "accumulator"
ENGINES = [["--engine", "py"], ["--engine", "interp"], ["--engine", "jit"], ["--target", "aarch64-linux"]]


@pytest.fixture
def opset_dir(tmp_path, monkeypatch) -> Path:
    where = tmp_path / "somewhere" / "accumulator"
    shutil.copytree(EXAMPLE, where, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("JIT_CACHE_DIR", str(tmp_path / "cache"))
    return where


def test_build_validate_and_run_from_a_directory(opset_dir, tmp_path, capsys):
    assert main(["stencils", "--opset", str(opset_dir), "--target", "x86_64-linux", "--target", "aarch64-linux"]) == 0
    listing = capsys.readouterr().out
    assert "LOOP (aarch64-linux)" in listing and "R_AARCH64_CONDBR19 _JIT_TARGET" in listing
    assert "MUL (x86_64-linux)" in listing and "R_X86_64_64 _JIT_OPERAND0" in listing
    opset = load(opset_dir)
    for target in ("x86_64-linux", "aarch64-linux"):
        path = library_path(target, opset=opset)
        assert path.is_relative_to(tmp_path / "cache") and path.exists()
        helpers = [f"helper.{h}" for h in opset.helpers]
        assert [s["name"] for s in json.loads(path.read_text())["ops"]] == [*opset.ops, *helpers]
    assert main(["validate", "--opset", str(opset_dir)]) == 0
    assert "0 mismatches" in capsys.readouterr().out
    for engine in ENGINES:
        assert main(["run", "--opset", str(opset_dir), str(opset_dir / "demo.acc"), *engine]) == 0
        assert capsys.readouterr().out.strip() == str(3 * 5**4 + 4)


def test_an_edited_body_is_rebuilt_and_caught_by_validate(opset_dir, capsys):
    x86 = library_path("x86_64-linux", opset=load(opset_dir))
    assert main(["stencils", "--opset", str(opset_dir), "--op", "add", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    bodies = opset_dir / "bodies.h"
    bodies.write_text(bodies.read_text().replace("s->acc += ARG", "s->acc -= ARG"))
    assert main(["stencils", "--opset", str(opset_dir), "--op", "add", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    target = next(iter(before))
    assert before[target]["key"] != after[target]["key"]
    assert before[target]["ops"][0]["code"] != after[target]["ops"][0]["code"]
    assert x86.exists()
    # The C now disagrees with the Python reference: validation says where.
    assert main(["validate", "--opset", str(opset_dir), "--op", "add"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH ADD" in out and "interp" in out and "aarch64-linux (emulated)" in out


def test_bad_op_sets_are_clear_errors(opset_dir, capsys):
    manifest = opset_dir / "opset.toml"
    text = manifest.read_text()
    manifest.write_text(text.replace('shim = "shim.c"\n', ""))
    assert main(["validate", "--opset", str(opset_dir)]) == 2
    assert "`shim` must be given" in capsys.readouterr().err
    manifest.write_text(text)
    table = opset_dir / "ops.def"
    table.write_text(table.read_text() + "OP(bad name)\n")
    assert main(["validate", "--opset", str(opset_dir)]) == 2
    err = capsys.readouterr().err
    assert "ops.def:10:" in err and "not an upper-case C identifier" in err


def test_a_c_error_names_op_set_op_and_target(opset_dir, capsys):
    bodies = opset_dir / "bodies.h"
    bodies.write_text(bodies.read_text().replace("s->acc *= ARG;", "s->acc *= nonsense;"))
    assert main(["stencils", "--opset", str(opset_dir), "--target", "aarch64-linux"]) == 2
    err = capsys.readouterr().err
    assert "stencil accumulator:" in err and "aarch64-linux" in err and "nonsense" in err


def _fold(x: int) -> int:
    x ^= x >> 31
    x = (x * 0x9E3779B97F4A7C15) % 2**64
    return x ^ (x >> 29)


def test_helpers_are_stencils_placed_beside_the_program(opset_dir, capsys):
    """mix (helpers.c) runs on every engine: called directly by the interpreter,
    through a hole by the stencils, natively and emulated."""
    program = opset_dir / "mixing.acc"
    program.write_text("count 3\nset 5\nagain:\nmix 77\nloop again\nhalt\n")
    acc = 5
    for _ in range(3):
        acc = (_fold(acc ^ 77) + _fold(77)) % 2**64
    for engine in ENGINES:
        assert main(["run", "--opset", str(opset_dir), str(program), *engine]) == 0
        assert capsys.readouterr().out.strip() == str(acc), engine
    opset = load(opset_dir)
    from jit.opsets.build import library_for
    from jit.opsets.place import place

    mod = opset.module
    for target in ("x86_64-linux", "aarch64-linux"):
        library = library_for(opset, target)
        placed = place(library, mod.steps(mod.parse(program)))
        assert placed.helpers == ["mix"]  # (fold is inlined into mix; only what the holes name is placed)
        assert placed.steps[-1].op == "helper.mix"
    assert main(["stencils", "--opset", str(opset_dir), "--op", "helper.mix", "--target", "aarch64-linux"]) == 0
    assert "helper.mix (aarch64-linux)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        (('name = "accumulator"', 'name = "../escape"'), "letters, digits, _ and - only"),
        (('template = "template.c"', 'template = "../../template.c"'), "not inside the op set's directory"),
        (('helpers = ["mix", "fold"]', 'helpers = ["mix", "fold"]\n[flags]\nz80-linux = ["-O1"]'), "names target 'z80"),
    ],
)
def test_a_manifest_cannot_reach_outside(opset_dir, capsys, change, message):
    manifest = opset_dir / "opset.toml"
    manifest.write_text(manifest.read_text().replace(*change))
    assert main(["validate", "--opset", str(opset_dir)]) == 2
    assert message in capsys.readouterr().err


def test_the_explorer_shows_an_op_sets_stencils(opset_dir, tmp_path, capsys):
    page = tmp_path / "acc.html"
    assert main(["explore", "--opset", str(opset_dir), "-o", str(page)]) == 0
    html = page.read_text()
    for name in ("MIX", "LOOP", "helper.mix", "x86_64-linux", "aarch64-linux", "_JIT_HELPER_mix"):
        assert name in html, name
    assert main(["explore", "--opset", str(opset_dir), "--program", str(opset_dir / "demo.acc")]) == 2


def test_the_c_stitcher_gives_the_reference_bytes(opset_dir):
    """An op set's code stitched in C (the default) is byte for byte what the
    Python reference stitches: eBPF programs (four operands, jumps, calls) and
    the accumulator's (with its helper placed beside the code), both targets."""
    from jit.codegen.stitcher import Stitcher
    from jit.opsets.build import library_for
    from jit.opsets.place import place

    ebpf = load("ebpf")
    acc = load(opset_dir)
    data = sorted((EXAMPLE.parent.parent / "tests" / "ebpf").glob("*.data"))
    programs = [(ebpf, ebpf.module.parse(p)) for p in data if p.stem != "readonly-r10"]  # (that one is rejected)
    programs.append((acc, acc.module.parse_text("count 3\nset 5\nagain:\nmix 77\nloop again\nhalt\n", "m.acc")))
    for opset, program in programs:
        steps = opset.module.steps(program)
        for target in ("x86_64-linux", "aarch64-linux"):
            library = library_for(opset, target)
            c, py = place(library, steps), place(library, steps, Stitcher.PYTHON)
            assert list(c.layout.code_offsets) == list(py.layout.code_offsets)
            for base in (0x7F00_0000_0000, 0x1000):
                assert c.render(base) == py.render(base), (program.path, target)


def test_an_op_set_edited_after_loading_is_run_as_it_is_now(opset_dir, capsys):
    """A notebook's flow: load, run, add an op in the middle of the table, run
    again with the same OpSet object: the engines take the table as it is now,
    so the interpreter's and the stencils' numbering agree with the steps'."""
    from jit.opsets.engines import Engine, run

    opset = load(opset_dir)
    program = opset.module.parse(opset_dir / "demo.acc")
    before = {e: run(opset, program, e).outcome.value for e in (Engine.INTERP, Engine.JIT)}
    table = opset_dir / "ops.def"
    table.write_text(table.read_text().replace("OP(SET, set)\n", "OP(NOP, nop)\nOP(SET, set)\n"))
    bodies = opset_dir / "bodies.h"
    bodies.write_text(bodies.read_text() + "BODY(NOP) { NEXT(); }\n")
    after = {e: run(opset, program, e).outcome.value for e in (Engine.INTERP, Engine.JIT)}
    assert before == after == {Engine.INTERP: 1879, Engine.JIT: 1879}


def test_the_stack_machine_is_an_op_set_built_by_the_same_code(libraries, capsys):
    """stencils/ loads as the op set `stack`; its library is the one every
    stack-machine engine runs (one builder, one cache), with each op's
    stack-caching variants from its module, and host helpers from helpers.h."""
    from jit.build.library import jobs_for
    from jit.lang.optable import helper_names, optable
    from jit.opsets import stack_machine

    stack = load("stack")
    assert stack == stack_machine()
    assert stack.ops == tuple(op.name for op in optable())
    assert stack.host_helpers == helper_names() and stack.helpers == ()
    for target, lib in libraries.items():
        assert library_path(target, opset=stack).read_text() == lib.dumps()
    names = [job.name for job in jobs_for(stack)]
    assert names[0] == "shim" and sorted(names[1:]) == sorted(next(iter(libraries.values())).ops)
    add = [job for job in jobs_for(stack) if "-DTHIS_OP=OP_ADD" in job.flags]
    assert "-DCACHE_IN=2" in add[-1].flags and "-DCACHE_OUT=1" in add[-1].flags
    # `--opset stack` is the default, not another op set: the same listing, the same runs
    assert main(["stencils", "--op", "add", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert main(["stencils", "--opset", "stack", "--op", "ADD", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == default
    assert [s["name"] for s in next(iter(default.values()))["ops"]] == [job.name for job in add]
    fib = str(Path(__file__).parent.parent / "bench" / "programs" / "fib.uop")
    assert main(["run", "--opset", "stack", fib, "20"]) == 0
    assert capsys.readouterr().out == "6765\n"


def test_an_op_set_without_the_engines_contract_is_refused_before_it_runs(tmp_path, capsys):
    """A copy of stencils/ is a different op set, whose module only adds
    variants: the engines say what it lacks instead of failing midway."""
    copy = tmp_path / "mystack"
    shutil.copytree(Path(__file__).parent.parent / "stencils", copy, ignore=shutil.ignore_patterns("__pycache__"))
    program = tmp_path / "p.txt"
    program.write_text("x\n")
    assert main(["run", "--opset", str(copy), str(program)]) == 2
    err = capsys.readouterr().err
    assert "op set stack's module does not provide STATE_SIZE, parse, steps" in err and "Traceback" not in err


def test_host_helpers_come_from_a_helpers_list(opset_dir, capsys):
    manifest = opset_dir / "opset.toml"
    (opset_dir / "host.h").write_text("#define HELPERS(X) \\\n    X(alpha) \\\n    X(beta)\n\nint alpha(void);\n")
    manifest.write_text(manifest.read_text() + 'host_helpers = "host.h"\n')
    assert load(opset_dir).host_helpers == ("alpha", "beta")
    (opset_dir / "host.h").write_text("int alpha(void);\n")
    assert main(["stencils", "--opset", str(opset_dir)]) == 2
    assert "host.h: no `#define HELPERS(X)` list of helpers" in capsys.readouterr().err


def test_any_op_set_is_benchmarked_on_its_programs(opset_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    programs = [str(opset_dir / "spin.acc"), str(opset_dir / "demo.acc")]
    assert main(["bench", "--opset", str(opset_dir), *programs, "--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("op set accumulator on ") and "C interpreter / copy-and-patch" in text
    report = json.loads(out.read_text())
    assert report["title"] == "op set accumulator" and sorted(report["programs"]) == ["demo", "spin"]
    assert report["instructions"] == {"spin": 6, "demo": 5}  # steps: every line but labels and comments
    for name in ("spin", "demo"):
        assert all(len(report["run_seconds"][name][e]) == report["repetitions"] for e in ("interp", "jit"))
    low, high = report["intervals"]["interp_over_jit"]
    assert low <= report["figures"]["interp_over_jit"] <= high
    # A program the engines cannot run is named, and nothing is timed.
    bad = tmp_path / "bad.acc"
    bad.write_text("frob 1\nhalt\n")
    assert main(["bench", "--opset", str(opset_dir), str(bad), "--quick"]) == 2
    assert "bad.acc:1" in capsys.readouterr().err
    assert main(["bench", "--opset", str(opset_dir)]) == 2
    assert "has no benchmark of its own: name the programs to time" in capsys.readouterr().err


def test_steps_a_module_makes_are_checked_before_they_are_stitched():
    """The engines' check of a module's steps (jit.opsets.engines.check_steps):
    64-bit operands at both ends pass; an unknown op, an operand or position
    outside 64 bits, or a target or exit outside the program is refused,
    naming the step."""
    from jit.codegen.step import Step
    from jit.errors import JitError
    from jit.opsets.engines import check_steps

    ebpf = load("ebpf")
    good = [Step("MOV64_K", 0, 0, 0, operand3=(1 << 64) - 1), Step("ADD64_K", -(1 << 63), 0, 1, target=0), Step("EXIT")]
    check_steps(ebpf, good)
    bad = {
        "step 1 names op 'NOPE'": [good[0], Step("NOPE"), good[2]],
        "step 0 (MOV64_K): operand3 18446744073709551616": [Step("MOV64_K", operand3=1 << 64), good[2]],
        "step 1 (ADD64_K): operand0 -9223372036854775809": [good[0], Step("ADD64_K", -(1 << 63) - 1), good[2]],
        "step 2 (EXIT): position -9223372036854775809": [*good[:2], Step("EXIT", position=-(1 << 63) - 1)],
        "step 1 (ADD64_K) has target 3, outside 0..2": [good[0], Step("ADD64_K", target=3), good[2]],
        "step 0 (MOV64_K) has exit -1, outside 0..2": [Step("MOV64_K", exit=-1), *good[1:]],
    }
    for message, steps in bad.items():
        with pytest.raises(JitError, match=re.escape(message)):
            check_steps(ebpf, steps)
    with pytest.raises(JitError, match="no steps"):
        check_steps(ebpf, [])
