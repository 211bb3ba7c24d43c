"""Run time per engine on the bundled programs (pytest-benchmark).

    pytest bench/test_run_time.py --benchmark-group-by=param:program

Each engine runs the same program with the same argument, in this process,
side by side; set-up (compiling closures, allocating the VM, and for the
jit-eager engines compiling the whole program) is not timed: that is the
steady state.  `jit` is the tiered engine, timed end to end: tier 1,
recording and compiling traces included.  pytest-benchmark's own tables time
the whole call, freeing the VM and the code included; the summary at the
end uses each run's own time (`Prepared.seconds`), which leaves those out.
`python -m jit bench` is the measurement to quote: it interleaves the
contenders and gives intervals.
"""

from __future__ import annotations

import statistics

import pytest

from jit.lang.uop import parse_file
from jit.paths import ROOT
from jit.tools.benchmark import SIZES, contenders


@pytest.mark.parametrize("engine", list(contenders()))
@pytest.mark.parametrize("program", sorted(SIZES))
def test_run(benchmark, record, program, engine):
    prog = parse_file(ROOT / "bench" / "programs" / f"{program}.uop")
    prepare = contenders()[engine]

    def setup():
        return (prepare(prog, [SIZES[program]]),), {}

    seconds: list[float] = []

    def target(run):
        outcome = run()
        seconds.append(run.seconds)
        return outcome

    rounds = 1 if engine == "py" else 7
    outcome = benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=0 if engine == "py" else 1)
    assert outcome.status == "halted", outcome.error
    record(program, engine, statistics.median(seconds[-rounds:]))
