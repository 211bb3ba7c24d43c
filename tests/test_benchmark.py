"""`python -m jit bench` produces every figure, a table and a plot (tiny sizes here:
the figures themselves are for bench runs, not for tests)."""

from __future__ import annotations

import json
import math

from jit import benchmark

TINY = {"nbody": 20, "fib": 10, "count": 500, "branchy": 301}


def test_measure_gives_every_figure(tmp_path):
    result = benchmark.measure(quick=True, sizes=TINY)
    for key, *_ in benchmark.GOALS:
        assert isinstance(result[key], float) and math.isfinite(result[key]) and result[key] > 0, key
    assert result["traces"] >= 3 and result["trace_uops"] > 0
    assert set(result["run_seconds"]) == set(TINY)
    for row in result["run_seconds"].values():
        assert set(row) == set(benchmark.RUN_ENGINES)
    info = result["machine_info"]
    assert info["clang"] and info["llvmlite"] and info["cores"]
    table = benchmark.format_table(result)
    assert "trace compile latency, llvm-O0 / copy-and-patch" in table and ">= 1000x" in table
    png = tmp_path / "out.png"
    benchmark.plot(result, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(result)  # serialisable as it is


def test_code_size_counts_the_removed_jumps():
    from jit.stitch import Step

    steps = [Step("PUSH_INT", 1), Step("PUSH_INT", 2), Step("ADD"), Step("HALT")]
    emitted, original = benchmark.code_sizes([benchmark.Trace("t", steps, 4)])
    assert emitted < original  # three of the four lost their final jump


def test_ablation_measures_each_technique_it_has():
    result = benchmark.measure_ablation(quick=True, sizes={"count": 300, "branchy": 301})
    rows = result["ablation"]
    techniques = {row["technique"].split(" (")[0].split(":")[0] for row in rows}
    assert {"C stitcher", "tail clean-up", "superinstructions", "stencils at -Os", "stack caching"} <= techniques
    for row in rows:
        assert row["on"] > 0 and row["off"] > 0 and row["contribution"] > 0
    sizes = {row["technique"]: row for row in rows if row["figure"].startswith("code bytes")}
    assert sizes["tail clean-up"]["off"] > sizes["tail clean-up"]["on"]  # removing jumps saves bytes
    assert sizes["superinstructions"]["off"] > sizes["superinstructions"]["on"]
    assert sizes["stack caching"]["off"] > sizes["stack caching"]["on"]  # register moves instead of memory
    assert "stack caching" in benchmark.format_ablation(result)
