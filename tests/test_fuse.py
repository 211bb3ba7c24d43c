"""Superinstructions: fused where nothing jumps in, indices remapped, results unchanged."""

from __future__ import annotations

import pytest

from jit.codegen.fuse import COMPARES, fuse
from jit.codegen.step import Step
from jit.codegen.trace import program_steps
from jit.lang.ir import INT64_MAX, INT64_MIN
from jit.lang.uop import parse, parse_file
from jit.paths import ROOT
from jit.runtime.engines import ENGINES
from jit.runtime.native import prepare_eager
from jit.runtime.tiering import TierConfig, prepare_tiered

PROGRAMS = ROOT / "bench" / "programs"


def test_patterns_and_remapping():
    steps = [
        Step("LOAD", 1),  # 0
        Step("PUSH_INT", 5),
        Step("SUB"),
        Step("STORE", 1),  # -> INC_LOCAL 1, -5
        Step("LOAD", 0),  # 4: a jump target, so it starts a run
        Step("LOAD", 2),  # -> LOAD2 0, 2
        Step("JZ", target=4),
        Step("PUSH_INT", 3),
        Step("ADD"),  # -> ADDK 3
        Step("HALT"),
    ]
    fused, where = fuse(steps)
    assert [(s.op, s.operand0, s.operand1) for s in fused] == [
        ("INC_LOCAL", 1, -5),
        ("LOAD2", 0, 2),
        ("JZ", 0, 0),
        ("ADDK", 3, 0),
        ("HALT", 0, 0),
    ]
    assert fused[2].target == 1 and where[4] == 1


def test_never_fuses_across_a_jump_target():
    steps = [Step("LOAD", 0), Step("LOAD", 1), Step("JUMP", target=1)]
    fused, _ = fuse(steps)
    assert [s.op for s in fused] == ["LOAD", "LOAD", "JUMP"]
    assert fused[2].target == 1


@pytest.mark.parametrize("name", sorted(p.stem for p in PROGRAMS.glob("*.uop")))
def test_fused_programs_run_the_same(name):
    program = parse_file(PROGRAMS / f"{name}.uop")
    args = [{"fannkuch": 6, "mandelbrot": 24, "nbody": 30, "fib": 12, "spectralnorm": 12}.get(name, 200)]
    assert len(program_steps(program)) < len(program_steps(program, superinstructions=False))
    expected = ENGINES["py"](program, args)
    assert prepare_eager(program, args, superinstructions=False)() == expected
    assert prepare_eager(program, args)() == expected
    plain = prepare_tiered(program, args, TierConfig(hot_loop=2, hot_exit=2, superinstructions=False, accounting=True))
    fused = prepare_tiered(program, args, TierConfig(hot_loop=2, hot_exit=2, accounting=True))
    assert plain() == fused() == expected
    assert fused.stats.trace_ops == plain.stats.trace_ops  # the same micro-ops, in fewer stencils
    if plain.stats.traces:
        assert fused.stats.uops_compiled < plain.stats.uops_compiled


# What each comparison-and-branch pair becomes, written out rather than derived.
BRANCHING = {
    ("EQ", "JNZ"): "JEQ", ("EQ", "JZ"): "JNE", ("NE", "JNZ"): "JNE", ("NE", "JZ"): "JEQ",
    ("LT", "JNZ"): "JLT", ("LT", "JZ"): "JGE", ("GE", "JNZ"): "JGE", ("GE", "JZ"): "JLT",
    ("LE", "JNZ"): "JLE", ("LE", "JZ"): "JGT", ("GT", "JNZ"): "JGT", ("GT", "JZ"): "JLE",
    ("EQ", "GUARD_NONZERO"): "GUARD_EQ", ("EQ", "GUARD_ZERO"): "GUARD_NE",
    ("NE", "GUARD_NONZERO"): "GUARD_NE", ("NE", "GUARD_ZERO"): "GUARD_EQ",
    ("LT", "GUARD_NONZERO"): "GUARD_LT", ("LT", "GUARD_ZERO"): "GUARD_GE",
    ("GE", "GUARD_NONZERO"): "GUARD_GE", ("GE", "GUARD_ZERO"): "GUARD_LT",
    ("LE", "GUARD_NONZERO"): "GUARD_LE", ("LE", "GUARD_ZERO"): "GUARD_GT",
    ("GT", "GUARD_NONZERO"): "GUARD_GT", ("GT", "GUARD_ZERO"): "GUARD_LE",
}  # fmt: skip


@pytest.mark.parametrize(("compare", "branch"), sorted(BRANCHING))
def test_a_comparison_and_its_branch_become_one_step(compare, branch):
    steps = [
        Step("LOAD", 0),  # 0
        Step("LOAD", 1),  # 1 -> LOAD2
        Step(compare, position=7),  # 2 -> the fused branch, at the comparison's position
        Step(branch, 5, position=8, target=5, exit=4),
        Step("HALT"),  # 4
        Step("HALT"),  # 5
    ]
    fused, where = fuse(steps)
    assert [s.op for s in fused] == ["LOAD2", BRANCHING[compare, branch], "HALT", "HALT"]
    assert (fused[1].operand0, fused[1].position, fused[1].target, fused[1].exit) == (5, 7, 3, 2)
    assert where == [0, 0, 1, 1, 2, 3, 4]


def test_a_branch_that_is_a_jump_target_is_not_fused():
    steps = [Step("LT"), Step("JZ", target=3), Step("JUMP", target=1), Step("HALT")]
    assert [s.op for s in fuse(steps)[0]] == ["LT", "JZ", "JUMP", "HALT"]


def comparisons_program() -> str:
    """Every comparison, branched on both ways, on equal, smaller and larger
    values (and the ends of int64), inside a loop that runs `arg 0` times,
    printing which way each went: a trace of the loop has a guard of each.
    The last case of each compares the loop's counter with 2, so it goes one
    way on some passes and the other way on others: the guards a trace
    recorded on one pass leave it on another."""
    pairs = [(1, 2), (2, 2), (3, 2), (-1, 0), (INT64_MIN, INT64_MAX), (INT64_MAX, INT64_MIN), ("counter", 2)]
    body = []
    for k, (c, (a, b), branch) in enumerate((c, p, j) for c in COMPARES for p in pairs for j in ("jz", "jnz")):
        first = "    load 0" if a == "counter" else f"    push_int {a}"
        body += [first, f"    push_int {b}", f"    {c.lower()}", f"    {branch} took{k}"]
        body += ["    push_int 0", "    print_int", f"took{k}:", "    push_int 1", "    print_int"]
    loop = ["    load 0", "    jz end", *body, "    load 0", "    push_int 1", "    sub", "    store 0", "    jump top"]
    head = [".args 1", ".func main locals=1", "    arg 0", "    store 0", "top:"]
    return "\n".join([*head, *loop, "end:", "    halt", ""])


def test_fused_comparisons_branch_as_the_interpreter_does():
    program = parse(comparisons_program(), "comparisons.uop")
    args = [3]
    expected = ENGINES["py"](program, args)
    assert expected.output.count(b"0") == 3 * len(COMPARES) * 7  # (one of jz and jnz falls through, each case)
    fused_ops = {s.op for s in program_steps(program)}
    assert {f"J{c}" for c in COMPARES} <= fused_ops
    assert prepare_eager(program, args)() == expected
    tiered = prepare_tiered(program, args, TierConfig(hot_loop=1, hot_exit=1, accounting=True))
    assert tiered() == expected and tiered.stats.traces
    assert tiered.stats.side_exits  # (the counter's cases left the first trace through fused guards)
