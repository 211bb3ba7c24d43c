"""The benchmark's goals: the one table that `python -m jit bench` judges against.

A goal is met only when the whole interval of its figure clears the
threshold; an interval that straddles it is "within noise".  The keys are
the top-level keys of the benchmark's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Better(Enum):
    """Which way a figure improves."""

    HIGHER = ">="
    LOWER = "<="


class Verdict(Enum):
    MET = "met"  # the whole interval clears the goal
    NOISE = "within noise"  # the interval straddles it
    MISSED = "not met"  # the whole interval falls short


@dataclass(frozen=True)
class Goal:
    key: str  # the figure's JSON key
    what: str  # what it measures, for the report
    threshold: float
    better: Better = Better.HIGHER
    unit: str = "x"  # "x" for a ratio, else the figure's unit

    def text(self) -> str:
        shown = {"x": f"{self.threshold:g}x", "ms": f"{self.threshold:g} ms"}.get(self.unit, f"{self.threshold:,.0f}")
        return f"{self.better.value} {shown}"

    def verdict(self, low: float, high: float) -> Verdict:
        lo, hi = (low, high) if self.better is Better.HIGHER else (-high, -low)
        t = self.threshold if self.better is Better.HIGHER else -self.threshold
        if lo >= t:
            return Verdict.MET
        if hi < t:
            return Verdict.MISSED
        return Verdict.NOISE


GOALS: tuple[Goal, ...] = (
    Goal("run_ratio_vs_llvm_O2", "steady state, fair llvm-O2 / copy-and-patch (eager, geomean)", 0.5),
    Goal("run_ratio_vs_c_O0", "steady state, C -O0 / copy-and-patch (geomean)", 1.0),
    Goal("run_ratio_vs_c_O2", "steady state, C -O2 / copy-and-patch (geomean)", 0.4),
    Goal("run_speedup_vs_switch", "steady state, switch interpreter / copy-and-patch", 6.0),
    Goal("run_speedup_vs_tailcall", "steady state, tail-call interpreter / copy-and-patch", 4.0),
    Goal("tiered_speedup_vs_switch", "end to end, switch / tiered (tier 1 and compiles included)", 5.0),
    Goal("tiered_vs_eager", "end to end, copy-and-patch eager / tiered (tiered within 1.25x)", 0.8),
    Goal(
        "compile_e2e_uops_per_s", "compile in C, recorded path -> runnable code, micro-ops/s", 10_000_000, unit="uops/s"
    ),
    Goal(
        "compile_long_uops_per_s",
        "compile in C, loop traces unrolled to 300+ micro-ops, micro-ops/s",
        20_000_000,
        unit="uops/s",
    ),
    Goal("compile_e2e_speedup_vs_llvm_O0", "compile end to end, llvm-O0 / copy-and-patch (same traces)", 100.0),
    Goal("compile_e2e_speedup_vs_llvm_O2", "compile end to end, llvm-O2 / copy-and-patch (same traces)", 1000.0),
    Goal("code_size_ratio", "code size, emitted in line / the stencils used as compiled", 1.0, Better.LOWER),
    Goal("startup_ms", "start-up: python -m jit run fib 10, beyond python -c pass", 150, Better.LOWER, unit="ms"),
)
