"""`python -m jit bench`: every figure in jit.tools.goals, measured side by side, with intervals.

How it measures (docs/benchmarks.md says more):

* Contenders run interleaved: each repetition runs every contender once on
  a program before the next program, in alternating order, so drift in the
  machine touches them alike.  Each run is set up first (the VM, and for
  the eager engines the whole program compiled) and timed alone: only
  running the code counts (`Prepared.seconds`), never reading the outcome,
  freeing code or tearing down an LLVM engine.
* Run-time contenders: the interpreters (py, switch, tailcall), the tiered
  engine end to end (`jit`: tier 1, recording and compiling included),
  copy-and-patch eager, the fair LLVM peer at -O0 and -O2 (whole-function
  lowering, eager), the per-step LLVM lowering at -O2 (what whole-function
  compilation buys), and the C anchors at -O0 and -O2.
* Compile cost is timed end to end, from what tier 1 hands the compiler
  (jit.codegen.trace.Handover: the recorded path) to code that can run: forming,
  fusion, stack-cache choice, layout, stitching and sealing, for
  copy-and-patch and for each LLVM level, on the same traces (the ones the
  bundled programs produce when run tiered).  The stitch-only figure, from
  steps already formed, is kept and labelled so.
* Start-up: `python -m jit run fib.uop 10` (tiered, warm cache) against
  `python -c pass`, interleaved in pairs, in milliseconds over it.
* Every ratio is a median with a bootstrap 95 % interval.  For run times:
  per program, the paired ratios of the repetitions; the figure is the
  geometric mean over programs of their medians, and the interval comes
  from resampling the repetitions.  For compile figures: one value per
  repetition (all traces), median and resampled interval.  A goal is met
  only when the whole interval clears it (jit.tools.goals).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import statistics
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

from ..codegen.passes import DEFAULT_PASSES
from ..codegen.step import Step
from ..codegen.stitch import layout
from ..codegen.trace import LOOP, Handover, form
from ..errors import JitError
from ..lang.ir import Program
from ..lang.outcome import Prepared
from ..lang.uop import parse_file
from ..paths import PROGRAMS_DIR
from ..runtime.interfaces import Backend
from .goals import GOALS, Verdict

SIZES = {
    "nbody": 4000,
    "fannkuch": 8,
    "spectralnorm": 100,
    "mandelbrot": 160,
    "sieve": 500000,
    "fib": 25,
    "branchy": 1000000,
    "count": 1000000,
}
BOOTSTRAP_SAMPLES = 2000
PrepareFn = Callable[[Program, Sequence[int]], Prepared]


def _eager_llvm(opt: int, whole: bool = True) -> PrepareFn:
    def prepare(program: Program, args: Sequence[int]) -> Prepared:
        from ..runtime.llvm_backend import llvm_backend
        from ..runtime.native import prepare_eager

        return prepare_eager(program, args, backend=llvm_backend(opt, whole))

    return prepare


def _anchor(level: str) -> PrepareFn:
    def prepare(program: Program, args: Sequence[int]) -> Prepared:
        from .anchors import prepare_anchor

        return prepare_anchor(program, args, level)

    return prepare


def contenders() -> dict[str, PrepareFn]:
    """Every run-time contender by name, as the report and the JSON name them."""
    from ..runtime.engines import PREPARE

    return {
        "py": PREPARE["py"],
        "switch": PREPARE["switch"],
        "tailcall": PREPARE["tailcall"],
        "jit": PREPARE["jit"],
        "jit-eager": PREPARE["jit-eager"],
        "llvm-O0": _eager_llvm(0),
        "llvm-O2": _eager_llvm(2),
        "llvm-steps-O2": _eager_llvm(2, whole=False),
        "c_O0": _anchor("-O0"),
        "c_O2": _anchor("-O2"),
    }


LONG = "copy-and-patch, long"  # compile_seconds' key for the long traces
IN_C = "copy-and-patch, in C"  # ... for the traces compiled as the loop between the tiers compiles them
LONG_IN_C = "copy-and-patch, long, in C"
ONCE = frozenset({"py"})  # contenders run in the first repetition only (slow, and in no ratio)

# Run-time figures: key -> (numerator contender, denominator contender), geomean over programs.
RUN_RATIOS: dict[str, tuple[str, str]] = {
    "run_ratio_vs_llvm_O2": ("llvm-O2", "jit-eager"),
    "run_ratio_vs_c_O0": ("c_O0", "jit-eager"),
    "run_ratio_vs_c_O2": ("c_O2", "jit-eager"),
    "run_speedup_vs_switch": ("switch", "jit-eager"),
    "run_speedup_vs_tailcall": ("tailcall", "jit-eager"),
    "tiered_speedup_vs_switch": ("switch", "jit"),
    "tiered_vs_eager": ("jit-eager", "jit"),
    # no goal; shown for context
    "run_ratio_vs_llvm_O0": ("llvm-O0", "jit-eager"),
    "llvm_O2_whole_vs_steps": ("llvm-steps-O2", "llvm-O2"),
}
EXPLAINED = {
    "run_ratio_vs_llvm_O0": "steady state, fair llvm-O0 / copy-and-patch",
    "llvm_O2_whole_vs_steps": "LLVM -O2: per-step lowering / whole-function lowering",
    "compile_api_uops_per_s": "compile through the Python API (compile_handover), micro-ops/s",
    "compile_api_long_uops_per_s": "compile through the Python API, 300+ micro-ops, micro-ops/s",
    "compile_in_runs_uops_per_s": "compile in C inside the tiered runs (cold caches), micro-ops/s",
    "compile_stitch_uops_per_s": "compile from formed steps (stitch only), micro-ops/s",
    "compile_e2e_ms_per_trace": "compile through the Python API, copy-and-patch, ms per trace",
    "tiered_compiling_share": "tiered runs: share spent recording and compiling (mean)",
}


@dataclass
class Progress:
    total: int
    done: int = 0
    start: float = field(default_factory=time.perf_counter)

    def step(self, what: str) -> None:
        """One line per step; on a terminal, each replaces the last."""
        self.done += 1
        line = f"[{self.done}/{self.total}] {time.perf_counter() - self.start:5.1f}s {what}"
        sys.stderr.write(f"\r\x1b[K{line}" if sys.stderr.isatty() else f"{line}\n")
        sys.stderr.flush()

    def finish(self) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\n")


def load_programs(sizes: dict[str, int]) -> dict[str, Program]:
    return {name: parse_file(PROGRAMS_DIR / f"{name}.uop") for name in sizes}


@dataclass(frozen=True)
class Trace:
    """A trace or hot function the tiered engine compiled, as it was handed over."""

    program: str
    handover: Handover | None  # None: made up by a caller (then only `steps` is used)
    steps: list[Step]  # as formed: stencils, superinstructions and exits
    uops: int  # the IR micro-ops it covers (what throughput counts)


def collect_traces(programs: dict[str, Program], sizes: dict[str, int]) -> list[Trace]:
    """The traces and functions the tiered engine compiles for each program (default thresholds)."""
    from ..runtime.tiering import prepare_tiered

    traces: list[Trace] = []
    for name, program in programs.items():

        def keep(code, shape, side, name=name):
            traces.append(Trace(name, shape.handover, shape.steps, shape.ops))

        prepare_tiered(program, [sizes[name]], on_compile=keep)()
    return traces


LONG_TRACE = 300  # micro-ops: what the long-trace compile figure's traces cover at least


def long_traces(programs: dict[str, Program], traces: Sequence[Trace]) -> list[Trace]:
    """Each loop trace of the bundled programs recorded round its loop until
    it covers LONG_TRACE micro-ops or more: the loop unrolled in the trace, as
    a tracing JIT that unrolls would compile it (no bundled program records a
    path that long by itself)."""
    found: list[Trace] = []
    for t in traces:
        h = t.handover
        if h is None or h.kind is not LOOP or not h.pcs:
            continue
        pcs = array("q", list(h.pcs) * -(-LONG_TRACE // len(h.pcs)))
        unrolled = replace(h, pcs=pcs)
        found.append(Trace(t.program, unrolled, list(form(programs[t.program], unrolled).steps), len(pcs)))
    return found


def _alternate(items: Sequence[str], rep: int) -> list[str]:
    """Every other repetition runs the contenders in reverse, so that none is
    always the one that runs just after another (caches, frequency)."""
    return list(items) if rep % 2 == 0 else list(reversed(items))


def _median_interval(samples: Sequence[float], rng: random.Random) -> tuple[float, float, float]:
    """Median, and a bootstrap 95 % interval of the median."""
    n = len(samples)
    medians = sorted(statistics.median(rng.choices(samples, k=n)) for _ in range(BOOTSTRAP_SAMPLES))
    return statistics.median(samples), medians[int(0.025 * len(medians))], medians[int(0.975 * len(medians)) - 1]


def geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def paired_ratio(
    runs: dict[str, dict[str, list[float]]], num: str, den: str, rng: random.Random
) -> tuple[float, float, float]:
    """Geomean over programs of the median paired ratio num/den, with a
    bootstrap 95 % interval (repetitions resampled per program)."""
    ratios = {p: [a / b for a, b in zip(row[num], row[den], strict=True)] for p, row in runs.items()}
    value = geomean([statistics.median(r) for r in ratios.values()])
    boot = sorted(
        geomean([statistics.median(rng.choices(r, k=len(r))) for r in ratios.values()])
        for _ in range(BOOTSTRAP_SAMPLES)
    )
    return value, boot[int(0.025 * len(boot))], boot[int(0.975 * len(boot)) - 1]


def mean_share(parts: dict[str, dict[str, list[float]]], rng: random.Random) -> tuple[float, float, float]:
    """The mean over programs of the median share part/run (a program may
    spend nothing, so no geomean), with a bootstrap 95 % interval."""

    def share(pick) -> float:
        shares = []
        for row in parts.values():
            pairs = list(zip(row["compiling"], row["run"], strict=True))
            if pairs:
                shares.append(statistics.median(a / b for a, b in pick(pairs)))
        return statistics.fmean(shares) if shares else 0.0

    boot = sorted(share(lambda p: rng.choices(p, k=len(p))) for _ in range(BOOTSTRAP_SAMPLES))
    return share(lambda p: p), boot[int(0.025 * len(boot))], boot[int(0.975 * len(boot)) - 1]


def time_runs(
    programs: dict[str, Program], sizes: dict[str, int], reps: int, progress: Progress
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]]]:
    """Every run time, per program and contender, interleaved; and per
    program, what each tiered run spent recording and compiling (its
    TierStats), beside its time, and the micro-ops the loop between the
    tiers compiled in C and the time that took."""
    from ..runtime.config import TierStats

    table = contenders()
    runs: dict[str, dict[str, list[float]]] = {p: {c: [] for c in table} for p in programs}
    tiering: dict[str, dict[str, list[float]]] = {
        p: {"compiling": [], "run": [], "loop_ops": [], "loop_seconds": []} for p in programs
    }
    for rep in range(reps):
        for name, program in programs.items():
            for contender in _alternate(list(table), rep):
                if contender in ONCE and rep > 0:
                    continue
                run = table[contender](program, [sizes[name]])
                run()
                runs[name][contender].append(run.seconds)
                if contender == "jit" and isinstance(run.stats, TierStats):
                    tiering[name]["compiling"].append(run.stats.compile_seconds + run.stats.record_seconds)
                    tiering[name]["run"].append(run.seconds)
                    tiering[name]["loop_ops"].append(run.stats.loop_compile_ops)
                    tiering[name]["loop_seconds"].append(run.stats.loop_compile_seconds)
            progress.step(f"run time, repetition {rep + 1} of {reps}: {name}")
    return runs, tiering


STARTUP_RUNS = 7


def time_startup(runs: int, progress: Progress) -> list[float]:
    """Milliseconds `python -m jit run fib.uop 10` takes beyond `python -c pass`,
    per pair of runs (interleaved, warm cache, tiered engine)."""
    import subprocess

    program = str(PROGRAMS_DIR / "fib.uop")
    commands = {
        "jit": [sys.executable, "-m", "jit", "run", program, "10"],
        "pass": [sys.executable, "-c", "pass"],
    }
    subprocess.run(commands["jit"], capture_output=True, check=True)  # (the caches are warm from here on)
    over: list[float] = []
    for rep in range(runs):
        seconds = {}
        for name in _alternate(list(commands), rep):
            t0 = time.perf_counter()
            subprocess.run(commands[name], capture_output=True, check=True)
            seconds[name] = time.perf_counter() - t0
        over.append((seconds["jit"] - seconds["pass"]) * 1e3)
    progress.step(f"start-up, {runs} pairs of runs")
    return over


def compile_backends() -> dict[str, Backend]:
    from ..runtime.llvm_backend import llvm_backend
    from ..runtime.native import native_runtime

    return {"copy-and-patch": native_runtime(), "llvm-O0": llvm_backend(0), "llvm-O2": llvm_backend(2)}


class LoopCompiles:
    """Recorded paths compiled as the loop between the tiers compiles them
    (stencils/tiers.c: one C call a compile, into the open run, its exits
    noted and the compile logged), all of them in one C call, on a machine
    set up for it; what was made is freed after each time.  The machine's
    runtime has an arena of its own, whose first chunk holds its entry shim
    and an open run of ROOM bytes: every pass compiles into the same
    memory (a run is given back when its chunk holds nothing else)."""

    PASSES = 10  # (as many as the figures through the Python API average over)
    ROOM = 2 << 20  # bytes of the open run

    def __init__(self, programs: dict[str, Program]) -> None:
        from ..runtime.machines import NativeMachine
        from ..runtime.memory import Arena
        from ..runtime.native import NativeRuntime, native_runtime
        from ..runtime.tiering import TierConfig

        program = next(iter(programs.values()))
        c = TierConfig()
        self.runtime = NativeRuntime(native_runtime().library, Arena(chunk_size=2 * self.ROOM))
        self.machine = NativeMachine(
            program, [0] * program.nargs, c.hot_loop, c.hot_call, c.max_trace, self.runtime, c.hot_exit, c.accounting
        )
        self.machine.prepare_compiles(program)
        registers = bool(DEFAULT_PASSES if c.passes is None else c.passes)  # (as the tiered runs compile)
        if not self.machine.compile_in_loop(program, c.superinstructions, c.accounting, registers):
            raise JitError("this machine cannot compile in the loop between the tiers (no dual mapping)")
        self.runtime.arena.refill(self.ROOM)

    def seconds(self, programs: dict[str, Program], traces: Sequence[Trace]) -> float:
        """The mean time of a pass that compiles every trace (each pass timed alone)."""
        m = self.machine
        paths = [(programs[t.program], t.handover) for t in traces if t.handover is not None]
        compile_all = m.compile_paths(paths)
        total = 0.0
        for _ in range(self.PASSES):
            t0 = time.perf_counter()
            made = compile_all()
            total += time.perf_counter() - t0
            if made < len(paths):
                raise JitError(f"the loop's compile stopped after {made} of {len(paths)} traces")
            m.free_code()
        return total / self.PASSES

    def close(self) -> None:
        self.machine.close()
        self.runtime.close()


def time_compiles(
    programs: dict[str, Program], traces: Sequence[Trace], reps: int, progress: Progress, long: Sequence[Trace] = ()
) -> tuple[dict[str, list[float]], list[float]]:
    """Per backend, per repetition: seconds to compile every trace end to end
    (from its handover, through the Python API), and copy-and-patch's for the
    `long` traces (as "copy-and-patch, long"); the same, compiled in C as the
    loop between the tiers compiles them (IN_C, LONG_IN_C); and per
    repetition, copy-and-patch from formed steps."""
    backends = compile_backends()
    e2e: dict[str, list[float]] = {b: [] for b in backends}
    e2e[IN_C] = []
    stitch_only: list[float] = []
    cp = backends["copy-and-patch"]
    in_c = LoopCompiles(programs)
    if long:
        e2e[LONG] = []
        e2e[LONG_IN_C] = []
        unrolled = [(programs[t.program], t.handover) for t in long if t.handover is not None]
    for rep in range(reps):
        e2e[IN_C].append(in_c.seconds(programs, traces))
        if long:
            e2e[LONG_IN_C].append(in_c.seconds(programs, long))
        for name in _alternate(list(backends), rep):
            backend = backends[name]
            inner = 10 if name == "copy-and-patch" else 1  # copy-and-patch is too quick to time once
            total, codes = 0.0, []
            for t in traces:
                assert t.handover is not None
                # (the same path, with the passes this compiler runs by default: LLVM's lowering runs none)
                program, handover = programs[t.program], replace(t.handover, passes=backend.default_passes)
                t0 = time.perf_counter()
                for _ in range(inner):
                    codes.append(backend.compile_handover(program, handover)[1])
                total += (time.perf_counter() - t0) / inner
            e2e[name].append(total)
            for code in codes:
                code.free()
        if long:
            t0, codes = time.perf_counter(), []
            for _ in range(10):  # (as many passes as copy-and-patch's own figure makes)
                codes += [cp.compile_handover(program, handover)[1] for program, handover in unrolled]
            e2e[LONG].append((time.perf_counter() - t0) / 10)
            for code in codes:
                code.free()
        t0 = time.perf_counter()
        codes = [cp.compile(t.steps) for t in traces for _ in range(10)]
        stitch_only.append((time.perf_counter() - t0) / 10)
        for code in codes:
            code.free()
        progress.step(f"compile, repetition {rep + 1} of {reps}")
    in_c.close()
    return e2e, stitch_only


def emitted_size(library, steps, stack_cache: bool = True) -> int:
    """Bytes of code copy-and-patch emits for steps (with the variants it would choose)."""
    from ..codegen.stackcache import assign

    return layout(library, assign(steps, library.ops) if stack_cache else steps).code_offsets[-1]


def code_sizes(traces: Sequence[Trace]) -> tuple[int, int]:
    """Code emitted for the traces, and the size of the stencils it came from as
    clang emitted them (before jump removal)."""
    from ..codegen.stackcache import assign
    from ..runtime.native import native_runtime

    lib = native_runtime().library
    emitted = sum(emitted_size(lib, t.steps) for t in traces)
    original = sum(lib.ops[s.op].object_size for t in traces for s in assign(t.steps, lib.ops))
    return emitted, original


def machine_info() -> dict[str, object]:
    import capstone
    import llvmlite
    import llvmlite.binding as llvm

    from ..runtime.native import native_runtime

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "clang": native_runtime().library.clang,  # (the one that built the stencils: maybe the wheel's)
        "llvmlite": llvmlite.__version__,
        "llvm": ".".join(map(str, llvm.llvm_version_info)),
        "capstone": capstone.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


@dataclass
class Report:
    """Everything one `bench` run measured; `to_json()` is the JSON file."""

    figures: dict[str, float]  # every figure (those with goals, and the ones for context)
    intervals: dict[str, tuple[float, float]]  # bootstrap 95 % interval of each figure
    run_seconds: dict[str, dict[str, list[float]]]  # program -> contender -> every repetition
    compile_seconds: dict[str, list[float]]  # backend -> per repetition, all traces end to end
    tiering: dict[str, dict[str, list[float]]]  # program -> per tiered run: "compiling" (recording too), "run"
    sizes: dict[str, int]
    traces: int
    trace_uops: int
    long_traces: int  # (long_traces(): the loop traces unrolled to LONG_TRACE micro-ops or more)
    long_trace_uops: int
    code_bytes: dict[str, int]
    repetitions: dict[str, int]
    quick: bool
    machine_info: dict[str, object]

    def verdicts(self) -> dict[str, Verdict]:
        return {g.key: g.verdict(*self.intervals[g.key]) for g in GOALS}

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        figures = data.pop("figures")
        data["intervals"] = {k: list(v) for k, v in self.intervals.items()}
        data["goals"] = {g.key: {"goal": g.text(), "verdict": self.verdicts()[g.key].value} for g in GOALS}
        return {**figures, **data}


def measure(quick: bool, sizes: dict[str, int] | None = None, repetitions: tuple[int, int] | None = None) -> Report:
    """All the figures; `sizes` overrides the programs' arguments and
    `repetitions` the (compile, run) repetitions (the tests use tiny ones)."""
    reps_compile, reps_run = repetitions or ((3, 5) if quick else (7, 11))
    sizes = sizes or SIZES
    programs = load_programs(sizes)
    progress = Progress(2 + reps_compile + reps_run * len(programs))
    traces = collect_traces(programs, sizes)
    long = long_traces(programs, traces)
    progress.step(f"collected {len(traces)} traces and functions from {len(programs)} programs")
    e2e, stitch_only = time_compiles(programs, traces, reps_compile, progress, long)
    runs, tiering = time_runs(programs, sizes, reps_run, progress)
    startup = time_startup(STARTUP_RUNS, progress)
    progress.finish()
    uops = sum(t.uops for t in traces)
    emitted, original = code_sizes(traces)
    rng = random.Random(0)  # the intervals are reproducible from the JSON's samples

    figures: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}

    def put(key: str, stats: tuple[float, float, float]) -> None:
        figures[key], low, high = stats
        intervals[key] = (low, high)

    timed = {p: {c: v for c, v in row.items() if c not in ONCE} for p, row in runs.items()}
    for key, (num, den) in RUN_RATIOS.items():
        put(key, paired_ratio(timed, num, den, rng))
    cp = e2e["copy-and-patch"]
    long_uops = sum(t.uops for t in long)
    put("compile_e2e_uops_per_s", _median_interval([uops / s for s in e2e[IN_C]], rng))
    put("compile_long_uops_per_s", _median_interval([long_uops / s for s in e2e[LONG_IN_C]], rng))
    put("compile_api_uops_per_s", _median_interval([uops / s for s in cp], rng))
    put("compile_api_long_uops_per_s", _median_interval([long_uops / s for s in e2e[LONG]], rng))
    in_runs = []  # (per repetition: every program's compiles in C together)
    for k in range(reps_run):
        seconds = sum(row["loop_seconds"][k] for row in tiering.values())
        in_runs.append(sum(row["loop_ops"][k] for row in tiering.values()) / seconds if seconds else 0.0)
    put("compile_in_runs_uops_per_s", _median_interval(in_runs, rng))
    for level in ("O0", "O2"):  # (both through the Python API: the same calls, the same traces)
        paired = [a / b for a, b in zip(e2e[f"llvm-{level}"], cp, strict=True)]
        put(f"compile_e2e_speedup_vs_llvm_{level}", _median_interval(paired, rng))
    put("compile_stitch_uops_per_s", _median_interval([uops / s for s in stitch_only], rng))
    put("compile_e2e_ms_per_trace", _median_interval([s * 1e3 / len(traces) for s in cp], rng))
    put("tiered_compiling_share", mean_share(tiering, rng))
    put("code_size_ratio", (emitted / original,) * 3)
    put("startup_ms", _median_interval(startup, rng))
    return Report(
        figures,
        intervals,
        runs,
        e2e,
        tiering,
        sizes,
        len(traces),
        uops,
        len(long),
        long_uops,
        {"emitted": emitted, "stencils_used": original},
        {"compile": reps_compile, "run": reps_run},
        quick,
        machine_info(),
    )


def _shown(key: str, value: float) -> str:
    if key.endswith("_per_s"):
        return f"{value:,.0f}"
    if key.endswith("_per_trace"):
        return f"{value:.3f}"
    if key.endswith("_ms"):
        return f"{value:.0f} ms"
    if key.endswith("_us"):
        return f"{value:.2f} us"
    if key.endswith("_share"):
        return f"{value:.1%}"
    return f"{value:.2f}x"


def format_table(report: Report) -> str:
    f, iv = report.figures, report.intervals
    lines = [f"{'figure':<66}{'goal':>14}{'median':>13}  {'95% interval':<26}verdict"]
    verdicts = report.verdicts()
    for g in GOALS:
        low, high = iv[g.key]
        span = f"[{_shown(g.key, low)}, {_shown(g.key, high)}]"
        lines.append(f"{g.what:<66}{g.text():>14}{_shown(g.key, f[g.key]):>13}  {span:<26}{verdicts[g.key].value}")
    lines.append("")
    lines.append("for context (no goal):")
    for key, what in EXPLAINED.items():
        low, high = iv[key]
        span = f"[{_shown(key, low)}, {_shown(key, high)}]"
        lines.append(f"{what:<66}{'':>14}{_shown(key, f[key]):>13}  {span}")
    names = list(contenders())
    lines.append("")
    reps = report.repetitions
    lines.append(
        f"median run time, ms, of {reps['run']} interleaved repetitions (py: one); "
        + ", ".join(f"{n} {report.sizes[n]}" for n in report.sizes)
    )
    lines.append(f"{'program':<14}" + "".join(f"{c:>14}" for c in names))
    for program, row in report.run_seconds.items():
        lines.append(f"{program:<14}" + "".join(f"{statistics.median(row[c]) * 1e3:>14.3f}" for c in names))
    info = report.machine_info
    lines.append("")
    lines.append(
        f"{report.traces} traces and functions, {report.trace_uops} micro-ops; {report.long_traces} loop traces "
        f"unrolled to {LONG_TRACE}+ micro-ops, {report.long_trace_uops} micro-ops; "
        f"compile: {reps['compile']} repetitions"
    )
    lines.append(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['system']}; python {info['python']}, "
        f"{info['clang']}, llvmlite {info['llvmlite']} (LLVM {info['llvm']}); {info['date']}"
    )
    return "\n".join(lines) + "\n"


def plot(report: Report, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report.run_seconds
    names = list(contenders())
    programs = list(runs)
    fig, ax = plt.subplots(figsize=(13, 5.8))
    width = 0.84 / len(names)
    for k, c in enumerate(names):
        xs = [i + (k - (len(names) - 1) / 2) * width for i in range(len(programs))]
        meds = [statistics.median(runs[p][c]) * 1e3 for p in programs]
        low = [m - min(runs[p][c]) * 1e3 for m, p in zip(meds, programs, strict=True)]
        high = [max(runs[p][c]) * 1e3 - m for m, p in zip(meds, programs, strict=True)]
        ax.bar(xs, meds, width, label=c, yerr=[low, high], capsize=1.5, error_kw={"elinewidth": 0.6})
    ax.set_yscale("log")
    ax.set_xticks(range(len(programs)))
    ax.set_xticklabels([f"{p}\n{report.sizes[p]}" for p in programs])
    ax.set_ylabel("run time, ms (log scale): median, whiskers min-max")
    info = report.machine_info
    ax.set_title(
        "Run time per program and contender (lower is better). jit = tiered, compiles included; "
        "jit-eager, llvm-* = compiled whole,\ncompile not timed; c_* = the C anchors.  "
        f"{info['cpu']}, {info['date']}",
        fontsize=10,
    )
    ax.legend(ncol=5, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(data: dict[str, object], path: str) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")


def main(quick: bool, json_path: str | None, plot_path: str | None, ablation: bool = False) -> int:
    if ablation:
        from .ablation import format_ablation, measure_ablation

        result = measure_ablation(quick)
        sys.stdout.write(format_ablation(result))
        if json_path:
            write_json(result.to_json(), json_path)
        return 0
    report = measure(quick)
    sys.stdout.write(format_table(report))
    if json_path:
        write_json(report.to_json(), json_path)
    if plot_path:
        plot(report, plot_path)
    return 0
