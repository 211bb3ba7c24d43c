"""Steady-state run time of the interpreter baselines on the bundled programs.

    pytest bench/test_interpreters.py --benchmark-group-by=param:program

Each engine runs the same program with the same argument, in this process,
side by side; set-up (compiling closures, allocating the VM, and for
jit-eager compiling the whole program) is not timed.  `jit` is the tiered
engine, timed end to end: tier 1, recording and compiling traces included.
The summary at the end gives the ratios.
"""

from __future__ import annotations

import pytest

from jit.engines import PREPARE
from jit.paths import ROOT
from jit.uop import parse_file

from .conftest import SIZES


@pytest.mark.parametrize("engine", ["py", "switch", "tailcall", "jit-eager", "jit"])
@pytest.mark.parametrize("program", sorted(SIZES))
def test_run(benchmark, record, program, engine):
    prog = parse_file(ROOT / "bench" / "programs" / f"{program}.uop")
    prepare = PREPARE[engine]

    def setup():
        return (prepare(prog, [SIZES[program]]),), {}

    rounds = 3 if engine == "py" else 10
    outcome = benchmark.pedantic(lambda run: run(), setup=setup, rounds=rounds, warmup_rounds=1)
    assert outcome.status == "halted", outcome.error
    record(program, engine, benchmark.stats.stats.median)
