"""Superinstructions: fused where nothing jumps in, indices remapped, results unchanged."""

from __future__ import annotations

import pytest

from jit.codegen.fuse import fuse
from jit.codegen.step import Step
from jit.codegen.trace import program_steps
from jit.lang.uop import parse_file
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
