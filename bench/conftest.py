"""The benchmark suites' shared pieces: program sizes, and a ratio table at the end.

pytest-benchmark prints its own table per group; the summary below adds the
ratios between engines measured side by side in the same run, which is the
only kind of speed claim this project makes.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

# Arguments sized so that the slowest engine (py) takes about a second.
SIZES = {
    "nbody": 2000,
    "fannkuch": 8,
    "spectralnorm": 100,
    "mandelbrot": 200,
    "sieve": 300000,
    "fib": 22,
    "branchy": 300000,
    "count": 300000,
}

MEDIANS: dict[str, dict[str, float]] = defaultdict(dict)


@pytest.fixture
def record():
    def put(program: str, engine: str, seconds: float) -> None:
        MEDIANS[program][engine] = seconds

    return put


def pytest_terminal_summary(terminalreporter):
    if not MEDIANS:
        return
    engines = sorted({e for row in MEDIANS.values() for e in row})
    tr = terminalreporter
    tr.section("median run time (ms) and speed-up over py, measured in this run")
    tr.write_line(
        f"{'program':<14}"
        + "".join(f"{e:>12}" for e in engines)
        + "".join(f"{'py/' + e:>14}" for e in engines if e != "py")
    )
    product: dict[str, float] = defaultdict(lambda: 1.0)
    for program in sorted(MEDIANS):
        row = MEDIANS[program]
        cells = "".join(f"{row[e] * 1e3:>12.2f}" if e in row else f"{'-':>12}" for e in engines)
        ratios = ""
        for e in engines:
            if e == "py":
                continue
            if "py" in row and e in row:
                r = row["py"] / row[e]
                product[e] *= r
                ratios += f"{r:>13.1f}x"
            else:
                ratios += f"{'-':>14}"
        tr.write_line(f"{program:<14}{cells}{ratios}")
    n = len(MEDIANS)
    geo = "".join(f"{product[e] ** (1 / n):>13.1f}x" for e in engines if e != "py")
    tr.write_line(f"{'geomean':<14}{'':>{12 * len(engines)}}{geo}")
