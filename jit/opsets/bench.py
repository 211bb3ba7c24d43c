"""An op set's benchmark: its programs on the C interpreter and on
copy-and-patch, side by side (`python -m jit bench --opset NAME|DIR PROGRAM...`);
with no programs named, the op set's own, if its module has a `benchmark`
(eBPF's: C programs compiled by clang -target bpf, `bench --opset ebpf`).

Each program runs once on every engine first (or, as the op set says, a
short version of it: eBPF's reference is slow), and every engine must give
the same outcome.  Then, repetition by
repetition, the interpreter and the stitched code run interleaved (every
other repetition in reverse order); a run's time is the call into the code
alone (no compile, no buffer set-up).  Compile time is from the parsed
program (its instruction slots) to sealed code: decoding and checking the
instructions into steps, layout and stitching (the C stitcher), sealing.
Ratios are paired per repetition, reported as a geometric mean over the
programs with a bootstrap 95 % interval, as the main benchmark does.
"""

from __future__ import annotations

import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import JitError
from ..targets import host_target
from ..tools.benchmark import _median_interval, _shown, machine_info, paired_ratio
from . import OpSet
from .engines import Engine, run, run_interp, run_native
from .model import Benchmark, Outcome


@dataclass
class OpsetReport:
    title: str  # what the report's first line calls the op set
    programs: dict[str, str]  # name -> what it does
    figures: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    run_seconds: dict[str, dict[str, list[float]]]  # program -> engine -> every repetition
    compile_seconds: dict[str, list[float]]  # program -> every repetition
    instructions: dict[str, int]
    input_bytes: dict[str, int]
    repetitions: int
    quick: bool
    machine_info: dict[str, object]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["intervals"] = {k: list(v) for k, v in self.intervals.items()}
        return data


FIGURES = {
    "interp_over_jit": "steady state, C interpreter / copy-and-patch (geomean)",
    "compile_insns_per_s": "compile, instructions -> sealed code (decode, stitch, seal), insns/s",
    "compile_per_insn_us": "compile, time per instruction",
}


def measure(opset: OpSet, quick: bool, repetitions: int | None = None) -> OpsetReport:
    """An op set's own benchmark: the programs its module's `benchmark(quick)`
    gives (jit.opsets.model.Benchmark), each run first on every engine."""
    mod = opset.runnable()
    own = getattr(mod, "benchmark", None)
    if own is None:
        raise JitError(f"op set {opset.name} has no benchmark of its own: name the programs to time")
    bench: Benchmark = own(quick)
    for name, program in bench.checks.items():
        _agreed(opset, program, name)
    return measure_programs(
        opset, bench.programs, bench.what, quick, repetitions, bench.input_bytes, bench.count, bench.title
    )


def _agreed(opset: OpSet, program: Any, name: str) -> Outcome:
    """The outcome every engine gives the program (they must agree before anything is timed)."""
    outcomes = {e.value: run(opset, program, e).outcome for e in Engine}
    if len({*outcomes.values()}) != 1:
        raise JitError(f"{name}: the engines disagree: {outcomes}")
    return next(iter(outcomes.values()))


def measure_files(opset: OpSet, paths: list[Path], quick: bool, repetitions: int | None = None) -> OpsetReport:
    """Any op set's benchmark: program files its module parses, each run
    first on every engine (they must agree), then timed."""
    mod = opset.runnable()
    parsed = {}
    for path in paths:
        if path.stem in parsed:
            raise JitError(f"{path}: two benchmark programs are called {path.stem}")
        parsed[path.stem] = program = mod.parse(path)
        error = _agreed(opset, program, str(path)).error
        if error is not None:
            raise JitError(f"{path}: {error}")
    what = {n: str(p) for n, p in zip(parsed, paths, strict=True)}
    return measure_programs(opset, parsed, what, quick, repetitions)


def measure_programs(
    opset: OpSet,
    parsed: dict[str, Any],
    what: dict[str, str],
    quick: bool,
    repetitions: int | None = None,
    input_bytes: dict[str, int] | None = None,
    count: Callable[[Any], int] | None = None,
    title: str | None = None,
) -> OpsetReport:
    """The C interpreter and copy-and-patch on each program, interleaved;
    `count`: a program's instructions (default: its steps)."""
    mod = opset.runnable()
    reps = repetitions or (5 if quick else 11)
    runs: dict[str, dict[str, list[float]]] = {n: {"interp": [], "jit": []} for n in parsed}
    compiles: dict[str, list[float]] = {n: [] for n in parsed}
    instructions = {n: (count or (lambda prog: len(mod.steps(prog))))(prog) for n, prog in parsed.items()}
    for rep in range(reps):
        for name, program in parsed.items():
            order = ["interp", "jit"] if rep % 2 == 0 else ["jit", "interp"]
            for engine in order:
                result = run_interp(opset, program) if engine == "interp" else run_native(opset, program)
                runs[name][engine].append(result.run_seconds)
                if engine == "jit":
                    compiles[name].append(result.compile_seconds)
        sys.stderr.write(f"\rbench --opset {opset.name}: repetition {rep + 1} of {reps}")
    sys.stderr.write("\n")
    rng = random.Random(0)
    figures: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    value, low, high = paired_ratio(runs, "interp", "jit", rng)
    figures["interp_over_jit"], intervals["interp_over_jit"] = value, (low, high)
    total = sum(instructions.values())
    per_rep = [sum(compiles[n][k] for n in compiles) for k in range(reps)]
    value, low, high = _median_interval([total / s for s in per_rep], rng)
    figures["compile_insns_per_s"], intervals["compile_insns_per_s"] = value, (low, high)
    value, low, high = _median_interval([s * 1e6 / total for s in per_rep], rng)
    figures["compile_per_insn_us"], intervals["compile_per_insn_us"] = value, (low, high)
    return OpsetReport(
        title or f"op set {opset.name}",
        what,
        figures,
        intervals,
        runs,
        compiles,
        instructions,
        input_bytes or {},
        reps,
        quick,
        machine_info(),
    )


def format_report(report: OpsetReport) -> str:
    lines = [f"{report.title} on {host_target()}: the C interpreter and copy-and-patch, built from the same bodies"]
    lines.append(f"{'figure':<66}{'median':>13}  95% interval")
    for key, what in FIGURES.items():
        low, high = report.intervals[key]
        lines.append(f"{what:<66}{_shown(key, report.figures[key]):>13}  [{_shown(key, low)}, {_shown(key, high)}]")
    lines.append("")
    lines.append(f"median of {report.repetitions} interleaved repetitions; run times in ms, compile in ms")
    sized = bool(report.input_bytes)
    lines.append(
        f"{'program':<10}{'input bytes' if sized else '':>12}{'insns':>7}{'interp':>11}{'jit':>11}"
        f"{'interp/jit':>12}{'compile':>10}  what"
    )
    for name, what in report.programs.items():
        row = report.run_seconds[name]
        interp, jit = statistics.median(row["interp"]), statistics.median(row["jit"])
        ratio = statistics.median(a / b for a, b in zip(row["interp"], row["jit"], strict=True))
        compile_ms = statistics.median(report.compile_seconds[name]) * 1e3
        size = f"{report.input_bytes[name]:>12,}" if sized else f"{'':>12}"
        lines.append(
            f"{name:<10}{size}{report.instructions[name]:>7}"
            f"{interp * 1e3:>11.3f}{jit * 1e3:>11.3f}{ratio:>11.2f}x{compile_ms:>10.3f}  {what}"
        )
    info = report.machine_info
    lines.append("")
    lines.append(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['system']}; python {info['python']}, "
        f"{info['clang']}; {info['date']}"
    )
    return "\n".join(lines) + "\n"
