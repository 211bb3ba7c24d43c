"""Run time per engine on the bundled programs (pytest-benchmark).

    pytest bench/test_run_time.py --benchmark-group-by=param:program

Each engine runs the same program with the same argument, in this process,
side by side; set-up (compiling closures, allocating the VM, and for the
jit-eager engines compiling the whole program) is not timed: that is the
steady state.  `jit` is the tiered engine, timed end to end: tier 1,
recording and compiling traces included.  The summary at the end gives the
ratios.
"""

from __future__ import annotations

import pytest

from jit.benchmark import RUN_ENGINES, SIZES
from jit.engines import PREPARE
from jit.paths import ROOT
from jit.uop import parse_file


@pytest.mark.parametrize("engine", RUN_ENGINES)
@pytest.mark.parametrize("program", sorted(SIZES))
def test_run(benchmark, record, program, engine):
    prog = parse_file(ROOT / "bench" / "programs" / f"{program}.uop")
    prepare = PREPARE[engine]

    def setup():
        return (prepare(prog, [SIZES[program]]),), {}

    rounds = 1 if engine == "py" else 7
    outcome = benchmark.pedantic(
        lambda run: run(), setup=setup, rounds=rounds, warmup_rounds=0 if engine == "py" else 1
    )
    assert outcome.status == "halted", outcome.error
    record(program, engine, benchmark.stats.stats.median)
