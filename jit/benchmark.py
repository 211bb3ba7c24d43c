"""`python -m jit bench`: the figures DESIGN.md sets goals for, measured side by side.

Every figure is a ratio of two things timed in this run, interleaved (each
repetition runs every contender once before the next repetition starts),
and taken at the median:

* trace compile latency: the traces the bundled programs really produce
  (collected by running them tiered) compiled by copy-and-patch and by
  llvmlite at -O0 and -O2;
* compile throughput: IR micro-ops per second, copy-and-patch, on those
  traces;
* steady-state run time: each program compiled whole (`--eager`, compile not
  timed) with each backend, against the C interpreters and the Python one;
* end to end: the tiered engine, tier 1 and compiling included, against the
  switch interpreter;
* code size: the code copy-and-patch lays down for those traces, against the
  sum of the stencils it used as clang emitted them (before their final
  jumps were removed).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .engines import PREPARE
from .ir import Program
from .paths import ROOT
from .stitch import Step, layout
from .uop import parse_file

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
RUN_ENGINES = ["py", "switch", "tailcall", "jit", "jit-eager", "jit-eager:llvm-O0", "jit-eager:llvm-O2"]

# (key, what, goal text, test on the value)
GOALS: list[tuple[str, str, str, Callable[[float], bool]]] = [
    ("compile_speedup_vs_llvm_O0", "trace compile latency, llvm-O0 / copy-and-patch", ">= 100x", lambda v: v >= 100),
    ("compile_speedup_vs_llvm_O2", "trace compile latency, llvm-O2 / copy-and-patch", ">= 1000x", lambda v: v >= 1000),
    ("compile_uops_per_s", "compile throughput, micro-ops per second", ">= 1,000,000", lambda v: v >= 1e6),
    ("run_speedup_vs_switch", "steady state, switch / jit (geomean)", ">= 3x", lambda v: v >= 3),
    ("run_speedup_vs_tailcall", "steady state, tailcall / jit (geomean)", ">= 2x", lambda v: v >= 2),
    ("run_speedup_vs_llvm_O0", "steady state, llvm-O0 / jit (geomean)", "> 1x", lambda v: v > 1),
    ("run_ratio_vs_llvm_O2", "steady state, llvm-O2 / jit (geomean)", ">= 0.4 (within 2.5x)", lambda v: v >= 0.4),
    ("tiered_speedup_vs_switch", "end to end tiered, switch / jit (geomean)", ">= 2.5x", lambda v: v >= 2.5),
    ("code_size_ratio", "code size, emitted / stencils used", "<= 1.0x", lambda v: v <= 1.0),
]


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


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
    return {name: parse_file(ROOT / "bench" / "programs" / f"{name}.uop") for name in sizes}


@dataclass(frozen=True)
class Trace:
    program: str
    steps: list[Step]  # stencils, superinstructions and exits included
    uops: int  # the IR micro-ops it covers (what throughput counts)


def collect_traces(programs: dict[str, Program], sizes: dict[str, int]) -> list[Trace]:
    """The traces the tiered engine compiles for each program (default thresholds)."""
    from .tiering import prepare_tiered

    traces: list[Trace] = []
    for name, program in programs.items():

        def keep(code, shape, side, name=name):
            traces.append(Trace(name, shape.steps, shape.ops))

        prepare_tiered(program, [sizes[name]], on_compile=keep)()
    return traces


def _alternate(items: Sequence[str], rep: int) -> list[str]:
    """Every other repetition runs the contenders in reverse, so that none is
    always the one that runs just after another (caches, frequency)."""
    return list(items) if rep % 2 == 0 else list(reversed(items))


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_compiles(traces, reps: int, progress: Progress) -> dict[str, list[float]]:
    """Median compile time per trace, per backend, interleaved."""
    from .llvm_backend import llvm_backend
    from .native import native_runtime

    rt = native_runtime()
    backends = {"copy-and-patch": rt, "llvm-O0": llvm_backend(0), "llvm-O2": llvm_backend(2)}
    samples: dict[str, list[list[float]]] = {b: [[] for _ in traces] for b in backends}
    for rep in range(reps):
        for k, steps in enumerate(t.steps for t in traces):
            for name, backend in backends.items():
                inner = 20 if name == "copy-and-patch" else 1  # copy-and-patch is too quick to time once
                codes = []
                t0 = time.perf_counter()
                for _ in range(inner):
                    codes.append(backend.compile(steps))
                samples[name][k].append((time.perf_counter() - t0) / inner)
                for code in codes:
                    code.free()
        progress.step(f"compile latency, repetition {rep + 1} of {reps}")
    return {name: [statistics.median(s) for s in per] for name, per in samples.items()}


def time_runs(
    programs: dict[str, Program], sizes: dict[str, int], reps: int, progress: Progress
) -> dict[str, dict[str, float]]:
    """Median run time per program and engine; set-up (and --eager compiling) not timed."""
    results: dict[str, dict[str, list[float]]] = {n: {e: [] for e in RUN_ENGINES} for n in programs}
    for rep in range(reps):
        for name, program in programs.items():
            for engine in _alternate(RUN_ENGINES, rep):
                if engine == "py" and rep > 0:
                    continue  # one run of the Python interpreter is enough, and slow enough
                run = PREPARE[engine](program, [sizes[name]])
                results[name][engine].append(_time(run))
            progress.step(f"run time, repetition {rep + 1} of {reps}: {name}")
    return {n: {e: statistics.median(v) for e, v in per.items()} for n, per in results.items()}


def emitted_size(library, steps, stack_cache: bool = True) -> int:
    """Bytes of code copy-and-patch emits for steps (with the variants it would choose)."""
    from .stackcache import assign

    return layout(library, assign(steps, library.ops) if stack_cache else steps).code_offsets[-1]


def code_sizes(traces) -> tuple[int, int]:
    """Code emitted for the traces, and the size of the stencils it came from as
    clang emitted them (before jump removal)."""
    from .native import native_runtime
    from .stackcache import assign

    lib = native_runtime().library
    emitted = sum(emitted_size(lib, t.steps) for t in traces)
    original = sum(lib.ops[s.op].object_size for t in traces for s in assign(t.steps, lib.ops))
    return emitted, original


def machine_info() -> dict[str, object]:
    import capstone
    import llvmlite
    import llvmlite.binding as llvm

    from .toolchain import find_clang

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
        "clang": find_clang().version,
        "llvmlite": llvmlite.__version__,
        "llvm": ".".join(map(str, llvm.llvm_version_info)),
        "capstone": capstone.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def measure(quick: bool, sizes: dict[str, int] | None = None) -> dict[str, object]:
    """All the figures; `sizes` overrides the programs' arguments (the tests use tiny ones)."""
    reps_compile, reps_run = (3, 5) if quick else (7, 11)
    sizes = sizes or SIZES
    programs = load_programs(sizes)
    progress = Progress(1 + reps_compile + reps_run * len(programs))
    traces = collect_traces(programs, sizes)
    progress.step(f"collected {len(traces)} traces from {len(programs)} programs")
    compiles = time_compiles(traces, reps_compile, progress)
    runs = time_runs(programs, sizes, reps_run, progress)
    progress.finish()
    cp = sum(compiles["copy-and-patch"])
    uops = sum(t.uops for t in traces)
    emitted, original = code_sizes(traces)

    def ratio(num: str, den: str) -> float:
        return geomean([runs[p][num] / runs[p][den] for p in runs])

    figures = {
        "compile_speedup_vs_llvm_O0": sum(compiles["llvm-O0"]) / cp,
        "compile_speedup_vs_llvm_O2": sum(compiles["llvm-O2"]) / cp,
        "compile_uops_per_s": uops / cp,
        "run_speedup_vs_switch": ratio("switch", "jit-eager"),
        "run_speedup_vs_tailcall": ratio("tailcall", "jit-eager"),
        "run_speedup_vs_llvm_O0": ratio("jit-eager:llvm-O0", "jit-eager"),
        "run_ratio_vs_llvm_O2": ratio("jit-eager:llvm-O2", "jit-eager"),
        "tiered_speedup_vs_switch": ratio("switch", "jit"),
        "code_size_ratio": emitted / original,
    }
    return {
        **figures,
        "quick": quick,
        "machine_info": machine_info(),
        "traces": len(traces),
        "trace_uops": uops,
        "compile_seconds": {name: sum(times) for name, times in compiles.items()},
        "code_bytes": {"emitted": emitted, "stencils_used": original},
        "sizes": sizes,
        "run_seconds": runs,
    }


def format_table(result: dict[str, object]) -> str:
    lines = [f"{'figure':<52}{'goal':>22}{'measured':>14}  met"]
    for key, what, goal, ok in GOALS:
        value = float(result[key])  # type: ignore[arg-type]
        shown = f"{value:,.0f}" if key == "compile_uops_per_s" else f"{value:.2f}x"
        lines.append(f"{what:<52}{goal:>22}{shown:>14}  {'yes' if ok(value) else 'NO'}")
    runs: dict[str, dict[str, float]] = result["run_seconds"]  # type: ignore[assignment]
    sizes: dict[str, int] = result["sizes"]  # type: ignore[assignment]
    lines.append("")
    lines.append("median run time, ms (" + ", ".join(f"{n} {sizes[n]}" for n in sizes) + ")")
    lines.append(f"{'program':<14}" + "".join(f"{e:>19}" for e in RUN_ENGINES))
    for program, row in runs.items():
        lines.append(f"{program:<14}" + "".join(f"{row[e] * 1e3:>19.2f}" for e in RUN_ENGINES))
    info: dict[str, object] = result["machine_info"]  # type: ignore[assignment]
    lines.append("")
    lines.append(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['system']}; python {info['python']}, "
        f"{info['clang']}, llvmlite {info['llvmlite']} (LLVM {info['llvm']}); {info['date']}"
    )
    return "\n".join(lines) + "\n"


def plot(result: dict[str, object], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, dict[str, float]] = result["run_seconds"]  # type: ignore[assignment]
    sizes: dict[str, int] = result["sizes"]  # type: ignore[assignment]
    programs = list(runs)
    fig, ax = plt.subplots(figsize=(12, 5.5))
    width = 0.8 / len(RUN_ENGINES)
    for k, engine in enumerate(RUN_ENGINES):
        xs = [i + (k - (len(RUN_ENGINES) - 1) / 2) * width for i in range(len(programs))]
        ax.bar(xs, [runs[p][engine] * 1e3 for p in programs], width, label=engine)
    ax.set_yscale("log")
    ax.set_xticks(range(len(programs)))
    ax.set_xticklabels([f"{p}\n{sizes[p]}" for p in programs])
    ax.set_ylabel("median run time, ms (log scale)")
    info: dict[str, object] = result["machine_info"]  # type: ignore[assignment]
    ax.set_title(
        "Run time per program and engine (lower is better): jit = tiered, compile included;\n"
        f"jit-eager = compiled whole, compile not timed.  {info['cpu']}, {info['date']}",
        fontsize=10,
    )
    ax.legend(ncol=len(RUN_ENGINES), fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(quick: bool, json_path: str | None, plot_path: str | None, ablation: bool = False) -> int:
    result = measure_ablation(quick) if ablation else measure(quick)
    sys.stdout.write(format_ablation(result) if ablation else format_table(result))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
            f.write("\n")
    if plot_path and not ablation:
        plot(result, plot_path)
    return 0


# -- ablation -------------------------------------------------------------------

NOT_BUILT: list[str] = []

# Each technique, the setting that switches it off alone, and the figures it
# can move.  STEADY: eager run time; TIERED: end-to-end tiered run time;
# THROUGHPUT: compile throughput; CODE: code bytes for the traces (for
# superinstructions: for the programs compiled whole, since traces are
# formed with them).
STEADY, TIERED, THROUGHPUT, CODE = "steady", "tiered", "throughput", "code"
TECHNIQUES = [
    ("C stitcher (off: the Python reference loop)", "python-stitcher", (THROUGHPUT, TIERED)),
    ("tail clean-up: final-jump removal, branch inversion (off: stencils as compiled)", "keep-tails",
     (STEADY, TIERED, CODE)),
    ("superinstructions (off: one stencil per micro-op)", "no-superinstructions", (STEADY, TIERED, CODE)),
    ("stack caching: top of stack in pinned registers (off: all in memory)", "no-stack-cache",
     (STEADY, TIERED, CODE, THROUGHPUT)),
    ("stack caching two slots deep (off: one)", "depth-1", (STEADY, TIERED, CODE)),
    ("stencils at -Os (off: -O3)", "O3", (STEADY, TIERED, CODE)),
    ("hot functions compiled whole (off: only loops are compiled)", "no-hot-functions", (TIERED,)),
]  # fmt: skip
FIGURE_NAMES = {
    STEADY: "steady-state run time (off/on, geomean)",
    TIERED: "end-to-end tiered run time (off/on, geomean)",
    THROUGHPUT: "compile_uops_per_s",
    CODE: "code bytes for the traces",
}


def measure_ablation(quick: bool, sizes: dict[str, int] | None = None) -> dict[str, object]:
    """Each technique we have, switched off alone: what it contributes to each
    figure it can move (TECHNIQUES), all timed interleaved in one run."""
    from .build import DEFAULT, Variant, load_library
    from .native import NativeRuntime, native_runtime, prepare_eager, program_steps
    from .tiering import TierConfig, prepare_tiered

    sizes = sizes or SIZES
    reps = 3 if quick else 7
    programs = load_programs(sizes)
    target = native_runtime().library.target
    libraries = {
        "default": DEFAULT,
        "keep-tails": Variant(clean_tail=False),
        "O3": Variant(opt="-O3"),
        "depth-1": Variant(stack_depth=1),
    }
    runtimes = {name: NativeRuntime(load_library(target, v)) for name, v in libraries.items()}
    runtimes["no-stack-cache"] = NativeRuntime(load_library(target), stack_cache=False)
    runtimes["python-stitcher"] = NativeRuntime(load_library(target), stitcher="python")
    for name in ("no-superinstructions", "no-hot-functions"):
        runtimes[name] = runtimes["default"]
    configs = {name: TierConfig() for name in runtimes}
    configs["no-superinstructions"] = TierConfig(superinstructions=False)
    configs["no-hot-functions"] = TierConfig(hot_call=1 << 62)
    settings = ["default", *(off for _, off, _ in TECHNIQUES)]
    wanted = {fig: ["default", *(off for _, off, figs in TECHNIQUES if fig in figs)] for fig in FIGURE_NAMES}

    progress = Progress(1 + 2 * reps)
    traces = collect_traces(programs, sizes)
    progress.step(f"collected {len(traces)} traces")
    uops = sum(t.uops for t in traces)
    compile_times: dict[str, list[float]] = {name: [] for name in wanted[THROUGHPUT]}
    for rep in range(reps):
        for name in compile_times:
            rt = runtimes[name]
            t0 = time.perf_counter()
            codes = [rt.compile(t.steps) for t in traces]
            compile_times[name].append(time.perf_counter() - t0)
            for code in codes:
                code.free()
        progress.step(f"compile, repetition {rep + 1} of {reps}")
    times: dict[str, dict[str, dict[str, list[float]]]] = {
        fig: {p: {v: [] for v in wanted[fig]} for p in programs} for fig in (STEADY, TIERED)
    }
    for rep in range(reps):
        for pname, program in programs.items():
            args = [sizes[pname]]
            for vname in _alternate(settings, rep):
                rt, config = runtimes[vname], configs[vname]
                if vname in wanted[STEADY]:
                    fused = config.superinstructions
                    run = prepare_eager(program, args, backend=rt, superinstructions=fused)
                    times[STEADY][pname][vname].append(_time(run))
                if vname in wanted[TIERED]:
                    run = prepare_tiered(program, args, config, backend=None if rt is runtimes["default"] else rt)
                    times[TIERED][pname][vname].append(_time(run))
        progress.step(f"run time, repetition {rep + 1} of {reps}")
    progress.finish()
    medians = {
        fig: {p: {v: statistics.median(t) for v, t in row.items()} for p, row in per.items()}
        for fig, per in times.items()
    }
    throughput = {n: uops / statistics.median(t) for n, t in compile_times.items()}

    def code_sizes_on_off(off: str) -> tuple[int, int, str]:
        """Code bytes with the technique on and off, and what was measured.
        Traces are always formed with superinstructions, so those are
        compared on the programs compiled whole."""
        lib = runtimes["default"].library
        if off == "no-superinstructions":
            whole = [(program_steps(p), program_steps(p, superinstructions=False)) for p in programs.values()]
            on = sum(emitted_size(lib, fused) for fused, _ in whole)
            return on, sum(emitted_size(lib, plain) for _, plain in whole), "code bytes for the programs compiled whole"
        rt = runtimes[off]
        on = sum(emitted_size(lib, t.steps) for t in traces)
        return on, sum(emitted_size(rt.library, t.steps, rt.stack_cache) for t in traces), FIGURE_NAMES[CODE]

    def row(technique: str, off: str, fig: str) -> dict[str, object]:
        name = FIGURE_NAMES[fig]
        if fig in (STEADY, TIERED):
            ratio = geomean([r[off] / r["default"] for r in medians[fig].values()])
            on_value, off_value = 1.0, ratio
        elif fig == THROUGHPUT:
            on_value, off_value = throughput["default"], throughput[off]
            ratio = on_value / off_value
        else:
            on_value, off_value, name = code_sizes_on_off(off)
            ratio = off_value / on_value
        return {"technique": technique, "figure": name, "on": on_value, "off": off_value, "contribution": ratio}

    return {
        "ablation": [
            row(t if k == 0 else t.split(" (")[0].split(":")[0], off, fig)
            for t, off, figs in TECHNIQUES
            for k, fig in enumerate(figs)
        ],
        "not_built": NOT_BUILT,
        "run_seconds_by_variant": medians[STEADY],
        "tiered_seconds_by_variant": medians[TIERED],
        "machine_info": machine_info(),
    }


def format_ablation(result: dict[str, object]) -> str:
    lines = [f"{'technique':<80}{'figure':<46}{'on':>14}{'off':>14}{'on vs off':>11}"]
    for row in result["ablation"]:  # type: ignore[union-attr]
        on, off = row["on"], row["off"]
        fmt = (lambda v: f"{v:.3f}") if "off/on" in row["figure"] else (lambda v: f"{v:,.0f}")
        lines.append(
            f"{row['technique']:<80}{row['figure']:<46}{fmt(on):>14}{fmt(off):>14}{row['contribution']:>10.2f}x"
        )
    if NOT_BUILT:
        lines.append("")
        lines.append("not built yet, so not measured: " + "; ".join(NOT_BUILT))
    return "\n".join(lines) + "\n"
