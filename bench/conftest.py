"""The benchmark suites' shared pieces: program sizes, and a ratio table at the end.

pytest-benchmark prints its own table per group; the summary below adds the
speed-up of each engine over the C switch interpreter, measured side by side
in the same run, which is the only kind of speed claim this project makes.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

MEDIANS: dict[str, dict[str, float]] = defaultdict(dict)


@pytest.fixture
def record():
    def put(program: str, engine: str, seconds: float) -> None:
        MEDIANS[program][engine] = seconds

    return put


def pytest_terminal_summary(terminalreporter):
    """Median times, and each engine's speed-up over the switch interpreter."""
    if not MEDIANS:
        return
    engines = sorted({e for row in MEDIANS.values() for e in row})
    base = "switch" if "switch" in engines else engines[0]
    others = [e for e in engines if e != base]
    tr = terminalreporter
    tr.section(f"median run time (ms), and speed-up over {base}, measured side by side in this run")
    head = f"{'program':<14}" + "".join(f"{e:>12}" for e in engines) + "".join(f"{e + '/' + base:>20}" for e in others)
    tr.write_line(head)
    logs: dict[str, list[float]] = defaultdict(list)
    for program in sorted(MEDIANS):
        row = MEDIANS[program]
        cells = "".join(f"{row[e] * 1e3:>12.2f}" if e in row else f"{'-':>12}" for e in engines)
        for e in others:
            if base in row and e in row:
                speedup = row[base] / row[e]
                logs[e].append(speedup)
                cells += f"{speedup:>19.2f}x"
            else:
                cells += f"{'-':>20}"
        tr.write_line(f"{program:<14}{cells}")
    geo = "".join(f"{math.prod(logs[e]) ** (1 / len(logs[e])):>19.2f}x" if logs[e] else f"{'-':>20}" for e in others)
    tr.write_line(f"{'geomean':<14}{'':>{12 * len(engines)}}{geo}")
