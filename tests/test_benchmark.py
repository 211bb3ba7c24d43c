"""`python -m jit bench` produces every figure with its interval, a table, JSON and a plot
(tiny sizes here: the figures themselves are for bench runs, not for tests)."""

from __future__ import annotations

import json
import math
import random

import pytest

from jit.tools import benchmark
from jit.tools.goals import GOALS, Better, Goal, Verdict

TINY = {"nbody": 20, "fib": 10, "count": 500, "branchy": 301}


def test_measure_gives_every_figure_with_an_interval(tmp_path):
    report = benchmark.measure(quick=True, sizes=TINY, repetitions=(2, 2))
    data = report.to_json()
    for g in GOALS:
        value = data[g.key]
        low, high = data["intervals"][g.key]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, g.key
        assert low <= value <= high, g.key
        assert data["goals"][g.key]["verdict"] in {v.value for v in Verdict}
    assert report.traces >= 3 and report.trace_uops > 0
    assert report.long_traces >= 1 and report.long_trace_uops >= benchmark.LONG_TRACE * report.long_traces
    assert set(report.run_seconds) == set(TINY)
    for row in report.run_seconds.values():
        assert set(row) == set(benchmark.contenders())
        assert len(row["c_O2"]) == report.repetitions["run"] and len(row["py"]) == 1
    info = report.machine_info
    assert info["clang"] and info["llvmlite"] and info["cores"]
    table = benchmark.format_table(report)
    assert (
        "fair llvm-O2 / copy-and-patch" in table
        and ">= 1000x" in table
        and ">= 10,000,000" in table
        and "c_O0" in table
    )
    png = tmp_path / "out.png"
    benchmark.plot(report, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(data)  # serialisable as it is


def test_paired_ratio_is_the_geomean_of_per_program_medians():
    runs = {"a": {"x": [2.0, 4.0, 6.0], "y": [1.0, 1.0, 1.0]}, "b": {"x": [8.0, 8.0, 8.0], "y": [1.0, 2.0, 4.0]}}
    value, low, high = benchmark.paired_ratio(runs, "x", "y", random.Random(0))
    assert value == pytest.approx(math.sqrt(4.0 * 4.0))  # medians: a 4, b 4
    assert low <= value <= high and low >= 2.0 and high <= 8.0


def test_a_goal_is_met_only_when_the_whole_interval_clears_it():
    at_least = Goal("k", "what", 2.0)
    assert at_least.verdict(2.1, 3.0) is Verdict.MET
    assert at_least.verdict(1.9, 3.0) is Verdict.NOISE
    assert at_least.verdict(1.0, 1.9) is Verdict.MISSED
    at_most = Goal("k", "what", 1.0, Better.LOWER)
    assert at_most.verdict(0.8, 0.9) is Verdict.MET
    assert at_most.verdict(0.9, 1.1) is Verdict.NOISE
    assert at_most.verdict(1.1, 1.2) is Verdict.MISSED


def test_code_size_counts_the_removed_jumps():
    from jit.codegen.step import Step

    steps = [Step("PUSH_INT", 1), Step("PUSH_INT", 2), Step("ADD"), Step("HALT")]
    emitted, original = benchmark.code_sizes([benchmark.Trace("t", None, steps, 4)])
    assert emitted < original  # three of the four lost their final jump


def test_ablation_measures_each_technique_it_has():
    from jit.tools.ablation import TECHNIQUES, format_ablation, measure_ablation

    # The techniques whose "off" is a whole other library of every variant
    # (-O3, no tail clean-up, cold parts in line, locals by index, memory
    # from the state: a build each) are measured by `bench --ablation`; here,
    # the rest, with the two smaller libraries (one register, no float ones).
    big = ("O3", "keep-tails", "cold-inline", "locals-by-index", "memory-from-state")
    chosen = tuple(t for t in TECHNIQUES if t.off not in big)
    result = measure_ablation(quick=True, sizes={"count": 300, "branchy": 301}, techniques=chosen)
    rows = result.rows
    techniques = {row.technique.split(" (")[0].split(":")[0] for row in rows}
    assert {"C stitcher", "superinstructions", "stack caching", "hot functions compiled whole"} <= techniques
    for row in rows:
        assert row.on > 0 and row.off > 0 and row.contribution > 0
        assert row.interval[0] <= row.contribution <= row.interval[1]
    sizes = {row.technique: row for row in rows if row.figure.startswith("code bytes")}
    assert sizes["superinstructions"].off > sizes["superinstructions"].on
    assert sizes["stack caching"].off > sizes["stack caching"].on  # register moves instead of memory
    assert sizes["accounting left off"].off > sizes["accounting left off"].on  # the counting steps
    assert "stack caching" in format_ablation(result)
    json.dumps(result.to_json())


def test_long_traces_are_loops_recorded_round_until_long_enough():
    programs = benchmark.load_programs({"nbody": 20})
    traces = benchmark.collect_traces(programs, {"nbody": 20})
    long = benchmark.long_traces(programs, traces)
    loops = [t for t in traces if t.handover is not None and t.handover.kind.value == "loop"]
    assert len(long) == len(loops) > 0
    for t, loop in zip(long, loops, strict=True):
        assert t.handover is not None and loop.handover is not None
        pcs, once = list(t.handover.pcs), list(loop.handover.pcs)
        assert t.uops == len(pcs) >= benchmark.LONG_TRACE > len(pcs) - len(once)
        assert pcs == once * (len(pcs) // len(once))
        assert len(t.steps) > benchmark.LONG_TRACE // 2
