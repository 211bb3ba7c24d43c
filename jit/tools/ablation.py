"""`python -m jit bench --ablation`: what each technique contributes, each switched off alone.

Every setting runs interleaved with the default in the same repetitions,
timed as the main benchmark times (jit.tools.benchmark): only running the code,
compile cost end to end from the handover.  A contribution is off/on for
times and on/off for throughput (above 1: the technique helps), with a
bootstrap 95 % interval over the repetitions.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import asdict, dataclass, replace
from enum import Enum

from ..codegen.passes import BUILTIN_PASSES, DEFAULT_PASSES
from ..codegen.trace import form
from .benchmark import (
    SIZES,
    Progress,
    _alternate,
    _median_interval,
    collect_traces,
    emitted_size,
    load_programs,
    machine_info,
    paired_ratio,
)


class Figure(Enum):
    STEADY = "steady-state run time (off/on, geomean)"
    TIERED = "end-to-end tiered run time (off/on, geomean)"
    THROUGHPUT = "compile through the Python API, micro-ops/s (on/off)"
    CODE = "code bytes for the traces (off/on)"


@dataclass(frozen=True)
class Technique:
    name: str
    off: str  # the setting that switches it off alone
    figures: tuple[Figure, ...]  # the figures it can move


# What a technique that shapes the code can move: run time (steady and tiered) and code size.
RUN_AND_SIZE = (Figure.STEADY, Figure.TIERED, Figure.CODE)

TECHNIQUES = (
    Technique("C stitcher (off: the Python reference loop)", "python-stitcher", (Figure.THROUGHPUT, Figure.TIERED)),
    Technique(
        "tail clean-up: final-jump removal, branch inversion (off: stencils as compiled)",
        "keep-tails",
        RUN_AND_SIZE,
    ),
    Technique(
        "hot/cold splitting: cold parts out of line, in the data (off: in line)",
        "cold-inline",
        RUN_AND_SIZE,
    ),
    Technique(
        "superinstructions (off: one stencil per micro-op)",
        "no-superinstructions",
        RUN_AND_SIZE,
    ),
    Technique(
        "stack caching: top of stack in pinned registers (off: all in memory)",
        "no-stack-cache",
        (*RUN_AND_SIZE, Figure.THROUGHPUT),
    ),
    Technique("stack caching two slots deep (off: one)", "depth-1", RUN_AND_SIZE),
    Technique(
        "float stack caching: float registers too (off: integer registers only)",
        "no-float-cache",
        RUN_AND_SIZE,
    ),
    Technique(
        "locals at 32-bit displacements (off: each index a 64-bit constant)",
        "locals-by-index",
        RUN_AND_SIZE,
    ),
    Technique(
        "the memory's base and size in registers (off: read from the state)",
        "memory-from-state",
        RUN_AND_SIZE,
    ),
    Technique("stencils at -Os (off: -O3)", "O3", RUN_AND_SIZE),
    Technique("hot functions compiled whole (off: only loops are compiled)", "no-hot-functions", (Figure.TIERED,)),
    Technique(
        "trace forming and superinstructions in C (off: the Python reference)",
        "python-forming",
        (Figure.THROUGHPUT, Figure.TIERED),
    ),
    Technique(
        "the loop between the tiers in C (off: the controller's Python loop)",
        "python-tiering",
        (Figure.TIERED,),
    ),
    Technique(
        "traces compiled and exits linked by the loop in C (off: by the controller)",
        "controller-compiles",
        (Figure.TIERED,),
    ),
    Technique(
        "dual mapping, one-call compiles (off: mprotect, two calls a compile)",
        "mprotect",
        (Figure.THROUGHPUT, Figure.TIERED),
    ),
    Technique(
        "locals in registers, the registers pass (off: in memory, no pass)",
        "no-registers",
        (*RUN_AND_SIZE, Figure.THROUGHPUT),
    ),
    # The other passes are off by default; "off" here runs them (in place of registers, or with it for
    # eager code), so the contribution is what they cost (>1) or win.
    Technique(
        "trace-level passes left off (off: all the built-in ones run)",
        "passes",
        (*RUN_AND_SIZE, Figure.THROUGHPUT),
    ),
    *(
        Technique(f"pass {name} left off (off: it alone runs)", f"pass-{name}", (Figure.STEADY, Figure.TIERED))
        for name in BUILTIN_PASSES
        if name not in DEFAULT_PASSES
    ),
    # Off by default, like the next: "off" here counts, so the contribution is what counting costs.
    Technique(
        "accounting left off (off: COUNT and TAKE_EXIT steps, as --stats runs)",
        "accounting",
        (Figure.TIERED, Figure.CODE, Figure.THROUGHPUT),
    ),
    # Off by default; "off" here is --gdb, so the contribution is what registering costs.
    Technique("gdb registration left off (off: --gdb, every trace registered)", "gdb", (Figure.TIERED,)),
)
NOT_BUILT: list[str] = []


@dataclass(frozen=True)
class Row:
    technique: str
    figure: str
    on: float
    off: float
    contribution: float
    interval: tuple[float, float]


@dataclass
class Ablation:
    rows: list[Row]
    run_seconds: dict[str, dict[str, dict[str, list[float]]]]  # figure -> program -> setting -> every repetition
    repetitions: int
    machine_info: dict[str, object]

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "not_built": NOT_BUILT}


def measure_ablation(
    quick: bool, sizes: dict[str, int] | None = None, techniques: tuple[Technique, ...] = TECHNIQUES
) -> Ablation:
    """Each technique we have (or those given), switched off alone, timed interleaved in one run."""
    from ..build.library import DEFAULT, SWITCHED_OFF, load_library
    from ..codegen.emit import Stitcher
    from ..codegen.trace import program_steps
    from ..runtime.memory import Arena
    from ..runtime.native import NativeRuntime, native_runtime, prepare_eager
    from ..runtime.tiering import TierConfig, prepare_tiered

    sizes = sizes or SIZES
    reps = 3 if quick else 7
    programs = load_programs(sizes)
    target = native_runtime().library.target
    offs = {t.off for t in techniques}
    libraries = {"default": DEFAULT, **SWITCHED_OFF}
    runtimes = {
        name: NativeRuntime(load_library(target, v)) for name, v in libraries.items() if name in offs | {"default"}
    }
    runtimes["no-stack-cache"] = NativeRuntime(load_library(target), stack_cache=False)
    runtimes["python-stitcher"] = NativeRuntime(load_library(target), stitcher=Stitcher.PYTHON)
    runtimes["mprotect"] = NativeRuntime(load_library(target), arena=Arena(dual=False))
    with_passes = {"passes": BUILTIN_PASSES} | {f"pass-{p}": (p,) for p in BUILTIN_PASSES}
    for name in (
        "no-superinstructions",
        "no-hot-functions",
        "gdb",
        "python-forming",
        "python-tiering",
        "controller-compiles",
        "accounting",
        "no-registers",
        *with_passes,
    ):
        runtimes[name] = runtimes["default"]
    configs = {name: TierConfig() for name in runtimes}
    configs["no-superinstructions"] = TierConfig(superinstructions=False)
    configs["no-hot-functions"] = TierConfig(hot_call=1 << 62)
    configs["gdb"] = TierConfig(gdb=True)
    configs["python-forming"] = TierConfig(c_forming=False)
    configs["python-tiering"] = TierConfig(c_tiering=False)
    configs["controller-compiles"] = TierConfig(c_compiles=False)
    configs["accounting"] = TierConfig(accounting=True)
    for name, chosen in with_passes.items():
        configs[name] = TierConfig(passes=chosen)
    configs["no-registers"] = TierConfig(passes=())

    def passes_of(setting: str) -> tuple[str, ...]:
        """What compiles run in this setting: its passes, or the default."""
        chosen = configs[setting].passes
        return DEFAULT_PASSES if chosen is None else chosen

    def eager_passes(setting: str) -> tuple[str, ...]:
        """What an eager compile runs in this setting: its passes, then the default (unless it is the one off)."""
        if setting == "no-registers":
            return ()
        return tuple(dict.fromkeys((*passes_of(setting), *DEFAULT_PASSES)))

    def handover(t, setting: str):
        """A trace's handover as this setting forms it (its passes, forming, accounting)."""
        c = configs[setting]
        return replace(t.handover, passes=passes_of(setting), in_c=c.c_forming, accounting=c.accounting)

    settings = ["default", *(t.off for t in techniques)]
    wanted = {fig: ["default", *(t.off for t in techniques if fig in t.figures)] for fig in Figure}

    progress = Progress(1 + 2 * reps)
    traces = collect_traces(programs, sizes)
    progress.step(f"collected {len(traces)} traces")
    uops = sum(t.uops for t in traces)
    compile_times: dict[str, list[float]] = {name: [] for name in wanted[Figure.THROUGHPUT]}
    for rep in range(reps):
        for name in _alternate(list(compile_times), rep):
            rt = runtimes[name]
            codes, total = [], 0.0
            for t in traces:
                assert t.handover is not None
                t0 = time.perf_counter()
                codes.append(rt.compile_handover(programs[t.program], handover(t, name))[1])
                total += time.perf_counter() - t0
            compile_times[name].append(total)
            for code in codes:
                code.free()
        progress.step(f"compile, repetition {rep + 1} of {reps}")
    times: dict[Figure, dict[str, dict[str, list[float]]]] = {
        fig: {p: {v: [] for v in wanted[fig]} for p in programs} for fig in (Figure.STEADY, Figure.TIERED)
    }
    for rep in range(reps):
        for pname, program in programs.items():
            args = [sizes[pname]]
            for vname in _alternate(settings, rep):
                rt, config = runtimes[vname], configs[vname]
                if vname in wanted[Figure.STEADY]:
                    run = prepare_eager(
                        program,
                        args,
                        backend=rt,
                        superinstructions=config.superinstructions,
                        passes=eager_passes(vname),
                    )
                    run()
                    times[Figure.STEADY][pname][vname].append(run.seconds)
                if vname in wanted[Figure.TIERED]:
                    run = prepare_tiered(program, args, config, backend=None if rt is runtimes["default"] else rt)
                    run()
                    times[Figure.TIERED][pname][vname].append(run.seconds)
        progress.step(f"run time, repetition {rep + 1} of {reps}")
    progress.finish()
    rng = random.Random(0)

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
        steps = [form(programs[t.program], handover(t, off)).steps for t in traces]
        return on, sum(emitted_size(rt.library, s, rt.stack_cache) for s in steps), Figure.CODE.value

    def row(technique: str, off: str, fig: Figure) -> Row:
        if fig in (Figure.STEADY, Figure.TIERED):
            ratio, low, high = paired_ratio(times[fig], off, "default", rng)
            return Row(technique, fig.value, 1.0, ratio, ratio, (low, high))
        if fig is Figure.THROUGHPUT:
            on, off_ = compile_times["default"], compile_times[off]
            paired = [b / a for a, b in zip(on, off_, strict=True)]
            ratio, low, high = _median_interval(paired, rng)
            rates = uops / statistics.median(on), uops / statistics.median(off_)
            return Row(technique, fig.value, *rates, ratio, (low, high))
        on_bytes, off_bytes, name = code_sizes_on_off(off)
        return Row(technique, name, on_bytes, off_bytes, off_bytes / on_bytes, (off_bytes / on_bytes,) * 2)

    rows = [
        row(t.name if k == 0 else t.name.split(" (")[0].split(":")[0], t.off, fig)
        for t in techniques
        for k, fig in enumerate(t.figures)
    ]
    return Ablation(rows, {f.name.lower(): v for f, v in times.items()}, reps, machine_info())


def format_ablation(result: Ablation) -> str:
    lines = [f"{'technique':<80}{'figure':<46}{'on':>14}{'off':>14}{'on vs off':>11}  95% interval"]
    for r in result.rows:
        timed = r.figure in (Figure.STEADY.value, Figure.TIERED.value)
        fmt = (lambda v: f"{v:.3f}") if timed else (lambda v: f"{v:,.0f}")
        low, high = r.interval
        lines.append(
            f"{r.technique:<80}{r.figure:<46}{fmt(r.on):>14}{fmt(r.off):>14}{r.contribution:>10.2f}x"
            f"  [{low:.2f}, {high:.2f}]"
        )
    if NOT_BUILT:
        lines.append("")
        lines.append("not built yet, so not measured: " + "; ".join(NOT_BUILT))
    return "\n".join(lines) + "\n"
