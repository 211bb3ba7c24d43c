"""Helpers for tests that run programs on every engine and compare."""

from __future__ import annotations

from collections.abc import Sequence

from jit.engines import ENGINES
from jit.ir import Program
from jit.outcome import Outcome
from jit.uop import parse

ALL = sorted(ENGINES)


def run_all(program: Program, args: Sequence[int] = ()) -> dict[str, Outcome]:
    return {name: ENGINES[name](program, args) for name in ALL}


def agree(program: Program | str, args: Sequence[int] = ()) -> Outcome:
    """Run on every engine, check they agree exactly, return the common outcome."""
    if isinstance(program, str):
        program = parse(program, "test.uop")
    outcomes = run_all(program, args)
    reference = outcomes["py"]
    for name, outcome in outcomes.items():
        assert outcome == reference, f"{name} disagrees with py:\n{outcome}\n{reference}"
    return reference
