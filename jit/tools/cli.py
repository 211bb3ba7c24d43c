"""The `python -m jit` command line.

Exit status: 0 success; 1 a program hit a runtime error; 2 bad usage, or
anything that cannot be parsed, verified or built (with a one-line message).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..build import SHIM
from ..codegen.stitcher import Stitcher
from ..errors import JitError, ProgramError
from ..lang.outcome import ERROR
from ..targets import TARGETS, host_target

if TYPE_CHECKING:
    from ..opsets import OpSet

# Only what every command needs is imported here: a run starts faster when
# the stencil build, the disassembler and the runtime load only if used.


def _stencil_names(opset: OpSet, op: str | None) -> list[str] | None:
    """One op of an op set (any case) with its variants (the stack machine's
    add_21: two slots in registers on the way in, one on the way out), or one
    stencil by its own name: a variant, helper.NAME or the shim."""
    if op is None:
        return None
    from ..build.library import jobs_for

    jobs = jobs_for(opset)
    exact = [job.name for job in jobs if job.name.upper() == op.upper()]
    if exact and exact[0] in opset.ops:
        return [job.name for job in jobs if f"-DTHIS_OP=OP_{exact[0]}" in job.flags]
    if exact:
        return exact
    raise JitError(
        f"unknown op {op!r}; op set {opset.name}'s ops are: {', '.join(name.lower() for name in opset.ops)}"
        f" (or one of its stencils by name, such as {jobs[-1].name.lower()} or {SHIM})"
    )


def _opset(name: str | None) -> OpSet:
    """--opset NAME|DIR, or the stack machine."""
    from ..opsets import load, stack_machine

    return stack_machine() if name is None else load(name)


def _other_opset(name: str | None) -> OpSet | None:
    """--opset, unless it is the bundled stack machine (None): that op set
    brings its own runtime (tiering, the LLVM peer, its C interpreters), which
    the commands reach through jit.api; other op sets run on jit.opsets' engines."""
    if name is None:
        return None
    opset = _opset(name)
    return None if opset.root == _opset(None).root else opset


def cmd_stencils(args: argparse.Namespace) -> int:
    from ..opsets.build import library_for
    from .disasm import describe_stencil

    targets = args.target or [host_target() or "x86_64-linux"]
    opset = _opset(args.opset)
    names = _stencil_names(opset, args.op)
    libraries = {t: library_for(opset, t) for t in targets}
    dump: dict[str, dict] = {}
    for target, lib in libraries.items():
        if args.json:
            full = lib.to_json()
            if names is not None:
                full["ops"] = [s for s in full["ops"] if s["name"] in names]
                if SHIM not in names:
                    del full["shim"]
            dump[target] = full
            continue
        stencils = [lib.shim, *lib.ops.values()]
        for stencil in stencils:
            if names is None or stencil.name in names:
                sys.stdout.write(describe_stencil(target, stencil) + "\n")
    if args.json:
        json.dump(dump, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    return 0


def parse_args_for(filename: str, values: list[str]) -> list[int]:
    """The program's arguments as integers (decimal, 0x..., 0o..., 0b...); their
    count and range are checked by jit.api.check_args, for the CLI and the API alike."""
    out = []
    for text in values:
        try:
            out.append(int(text, 0))
        except ValueError:
            raise JitError(f"{filename}: argument {text!r} is not an integer") from None
    return out


_TIER_OPTIONS = ("hot_loop", "hot_call", "hot_exit", "max_trace")


def cmd_run(args: argparse.Namespace) -> int:
    from .. import api
    from ..runtime.config import OBSERVER_FLAGS, TierConfig

    other = _other_opset(args.opset)
    if other is not None:
        return cmd_run_opset(args, other)
    if args.input is not None:
        raise JitError("--input goes with --opset: a .uop program takes integer arguments")
    if args.engine == "interp":
        raise JitError("--engine interp goes with --opset; the stack machine has py, switch and tailcall")
    program = api.load(args.program)
    values = api.check_args(program, parse_args_for(program.filename, args.args))  # (before --dump-traces compiles)
    tiered = args.engine == "jit" and not args.eager
    given = [name for name in _TIER_OPTIONS if getattr(args, name) is not None]
    given += [name for name in OBSERVER_FLAGS if getattr(args, name)]
    if given and not tiered:
        raise JitError(f"--{given[0].replace('_', '-')} goes with the tiered engine (--engine jit, without --eager)")
    if (args.stats or args.dump_traces) and args.engine != "jit":
        option = "--stats" if args.stats else "--dump-traces"
        raise JitError(f"{option} goes with --engine jit: interpreters compile nothing")
    if args.dump_traces and args.backend != "copy-and-patch":
        raise JitError("--dump-traces shows copy-and-patch code; LLVM lays out its own, which this does not show")
    config = None
    if tiered:
        try:
            config = TierConfig(
                **{name: getattr(args, name) for name in _TIER_OPTIONS if getattr(args, name) is not None},
                **{name: getattr(args, name) for name in OBSERVER_FLAGS},
                accounting=args.stats,  # (what --stats reports is counted by the code)
            )
        except ValueError as e:
            raise JitError(f"--{str(e).split()[0].replace('_', '-')}: must be at least 1") from None
    target = args.target or host_target()
    if target is None:
        raise JitError("this machine has no native target: choose one with --target")
    on_compile = _tracer(program, target) if args.dump_traces and tiered else None
    passes = None if args.passes is None else [p for p in args.passes.split(",") if p]
    if args.dump_traces and args.eager:
        _dump_eager(program, values, target, args.emulate or target != host_target(), passes)
    result = api.run(
        program,
        values,
        engine=args.engine,
        eager=args.eager,
        backend=args.backend,
        target=args.target,
        emulate=args.emulate,
        config=config,
        on_compile=on_compile,
        passes=passes,
    )
    sys.stdout.buffer.write(result.output)
    sys.stdout.flush()
    if args.stats and result.stats is not None:
        sys.stderr.write(result.stats.report())
    if result.status == ERROR:
        print(result.error, file=sys.stderr)
        return 1
    return 0


def cmd_run_opset(args: argparse.Namespace, opset: OpSet) -> int:
    """A program of an op set (jit.opsets) on one engine: its result on stdout;
    exit 1 when it fails at run time, is rejected, or is not what its file expects."""
    from ..opsets.engines import Engine, run
    from ..opsets.model import Rejected

    defaults: dict[str, object] = {"backend": "copy-and-patch", "passes": None, "args": []}
    given = [name for name, value in defaults.items() if getattr(args, name) != value]
    given += [name for name in ("dump_traces", "stats", "perf_map", "perf_jitdump", "gdb") if getattr(args, name)]
    given += [name for name in _TIER_OPTIONS if getattr(args, name) is not None]
    if given:
        what = "program arguments" if given[0] == "args" else f"--{given[0].replace('_', '-')}"
        raise JitError(f"{what} does not go with --opset (its programs take their input with --input FILE)")
    if args.engine in ("switch", "tailcall"):
        raise JitError(f"--engine {args.engine} is the stack machine's; with --opset: py, interp or jit")
    mod = opset.runnable()
    program = mod.parse(Path(args.program))
    if args.input is not None:
        with_input = getattr(mod, "with_input", None)
        if with_input is None:
            raise JitError(f"op set {opset.name} takes no --input")
        try:
            program = with_input(program, Path(args.input).read_bytes())
        except OSError as e:
            raise JitError(f"--input {args.input}: {e.strerror}") from None
    target = args.target or host_target()
    if target is None:
        raise JitError("this machine has no native target: choose one with --target")
    try:
        if args.emulate and args.engine == "jit":
            from ..opsets.emulate import run_emulated

            outcome = run_emulated(opset, program, target).outcome
        else:
            outcome = run(opset, program, Engine(args.engine), target).outcome
    except Rejected as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if outcome.error is not None:
        print(outcome.error, file=sys.stderr)
        return 1
    print(mod.format(outcome))
    problem = mod.check(program, outcome)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    return 0


def _tracer(program, target: str):
    """An on_compile that prints each trace or function as it is compiled (stderr)."""
    from ..build.library import load_library
    from ..codegen.trace import FUNCTION
    from .dump import describe_compiled

    def dump(compiled, shape, side) -> None:
        line = program.code[shape.start_pc].line
        if shape.kind == FUNCTION:
            name = next(f.name for f in program.functions if f.start == shape.start_pc)
            title = f"function {name}, compiled whole, from pc {shape.start_pc} (line {line}), {target}"
        else:
            title = f"{'side ' if side else ''}trace from pc {shape.start_pc} (line {line}), {target}"
        sys.stderr.write(describe_compiled(compiled, load_library(target), program, title))

    return dump


def _dump_eager(program, values: list[int], target: str, emulated: bool, passes: list[str] | None) -> None:
    """The whole program compiled with copy-and-patch, as --eager runs it (with
    the same passes), printed (stderr)."""
    from ..build.library import load_library
    from ..codegen.passes import DEFAULT_PASSES, check
    from ..codegen.trace import program_steps
    from .dump import describe_compiled

    chosen = DEFAULT_PASSES if passes is None else tuple(passes)
    try:
        check(chosen)
    except ValueError as e:
        raise JitError(str(e)) from None
    steps = program_steps(program, passes=chosen)

    if emulated:
        from ..runtime.emulate import Emulator

        emu = Emulator(target, program, values)
        code = emu.compile(steps)
        title = f"{program.filename} (eager, {target}, emulated)"
        sys.stderr.write(describe_compiled(code, load_library(target), program, title))
        return
    from ..runtime.native import native_runtime

    rt = native_runtime()
    compiled = rt.compile(steps)
    try:
        sys.stderr.write(describe_compiled(compiled, rt.library, program, f"{program.filename} (eager)"))
    finally:
        compiled.free()


def _opset_validate(args: argparse.Namespace, opset: OpSet) -> int:
    from ..opsets.validate import validate as validate_opset

    if args.samples != 100 or args.stitcher != Stitcher.C.value or args.off:
        option = "--samples" if args.samples != 100 else "--stitcher" if args.off is None else "--off"
        raise JitError(f"{option} is the stack machine's validate; an op set's cases come from its module")
    ops = None if args.op is None else [args.op.upper()]
    targets = args.target or sorted(TARGETS)
    ran, bad = validate_opset(opset, targets, ops, args.seed)
    for mismatch in bad:
        print(f"MISMATCH {mismatch}")
    checked = len(ops or opset.ops)
    engines = "the C interpreter and " + ", ".join(targets)
    print(f"op set {opset.name}: {checked} ops, {ran} runs on {engines}: {len(bad)} mismatches with the reference")
    return 0 if not bad else 1


def cmd_validate(args: argparse.Namespace) -> int:
    from ..build.library import DEFAULT, SWITCHED_OFF, load_library
    from .validate import format_report, validate

    other = _other_opset(args.opset)
    if other is not None:
        return _opset_validate(args, other)
    if args.samples < 1:
        raise JitError("--samples must be at least 1")
    from ..lang.optable import optable

    names = _stencil_names(_opset(None), args.op)
    ops = list(optable()) if names is None else [i for i in optable() if i.name in names]
    if not ops:
        raise JitError("validate checks ops; the shim is exercised by every run instead")
    variant = DEFAULT if args.off is None else SWITCHED_OFF[args.off]
    ok = True
    for target in args.target or sorted(TARGETS):
        report = validate(target, ops, args.samples, args.seed, Stitcher(args.stitcher), variant)
        sys.stdout.write(format_report(report, load_library(target, variant)))
        ok &= report.ok
    return 0 if ok else 1


def cmd_explore(args: argparse.Namespace) -> int:
    from .explore import explore

    if args.args and args.program is None:
        raise JitError("program arguments go with --program")
    program_args = parse_args_for(args.program, args.args) if args.args else []
    other = _other_opset(args.opset)
    explore(Path(args.out), args.target or sorted(TARGETS), args.program, program_args, args.bench, other)
    print(f"wrote {args.out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .benchmark import main

    other = _other_opset(args.opset)
    if args.programs and other is None:
        raise JitError("program files go with --opset (the stack machine's benchmark has its own programs)")
    if other is not None:
        if args.ablation or args.plot:
            raise JitError("bench --opset has no ablation and no plot")
        from ..opsets.bench import format_report, measure, measure_files
        from .benchmark import write_json

        if args.programs:
            report = measure_files(other, [Path(p) for p in args.programs], args.quick)
        else:
            report = measure(other, args.quick)
        sys.stdout.write(format_report(report))
        if args.json:
            write_json(report.to_json(), args.json)
        return 0

    return main(args.quick, args.json, args.plot, args.ablation)


_TARGETS = " or ".join(sorted(TARGETS)) + " (or aarch64, x86_64)"


def _target(name: str) -> str:
    """--target: a target's name, or a machine's that runs it (aarch64, x86_64)."""
    from ..targets import target_name

    try:
        return target_name(name)
    except JitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _targets_option(p: argparse.ArgumentParser, default: str) -> None:
    """--target, repeatable (a target's name or a machine's)."""
    p.add_argument(
        "--target", action="append", type=_target, metavar="TARGET", help=f"{_TARGETS}; repeatable; default: {default}"
    )


def make_parser() -> argparse.ArgumentParser:
    from ..build.library import SWITCHED_OFF
    from ..codegen.passes import BUILTIN_PASSES

    parser = argparse.ArgumentParser(prog="python -m jit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stencils", help="show the stencil library: disassembly with holes named, or JSON")
    _targets_option(p, "the host")
    p.add_argument("--op", help="one op and its variants, by name or mnemonic; one variant (add_21); or 'shim'")
    p.add_argument("--json", action="store_true", help="machine-readable dump: code and data as hex, holes")
    p.add_argument("--opset", metavar="NAME|DIR", help="another op set's stencils (docs/opsets.md)")
    p.set_defaults(func=cmd_stencils)

    p = sub.add_parser("run", help="run a .uop program, or with --opset another VM's program")
    p.add_argument("program", help="the .uop file (with --opset: that op set's program, e.g. eBPF .data or .o)")
    p.add_argument("args", nargs="*", help="the program's integer arguments")
    p.add_argument(
        "--opset", metavar="NAME|DIR",
        help="run a program of this op set (bundled: stack, the default, and ebpf; or an op set's directory)",
    )  # fmt: skip
    p.add_argument("--input", metavar="FILE", help="with --opset: the program's input buffer, from this file")
    p.add_argument(
        "--engine", choices=["py", "switch", "tailcall", "interp", "jit"], default="jit",
        help="default: jit (tiered); with --opset: py (reference), interp (C) or jit (copy-and-patch, always "
        "eager; --eager is accepted); the interpreters run on this machine whatever --target says",
    )  # fmt: skip
    p.add_argument("--eager", action="store_true", help="with --engine jit: compile the whole program up front")
    p.add_argument(
        "--backend", choices=["copy-and-patch", "llvm-O0", "llvm-O2"], default="copy-and-patch",
        help="how --engine jit compiles: copy-and-patch (default), or llvmlite at -O0/-O2",
    )  # fmt: skip
    p.add_argument("--dump-traces", action="store_true", help="print the compiled code (stderr)")
    p.add_argument("--stats", action="store_true", help="tiering statistics (stderr)")
    p.add_argument("--hot-loop", type=int, metavar="N", help="back-edges before a loop is traced (50)")
    p.add_argument(
        "--hot-call", type=int, default=None, metavar="N", help="calls before a function is compiled whole (1000)"
    )
    p.add_argument("--hot-exit", type=int, default=None, metavar="N", help="exits taken before a side trace (10)")
    p.add_argument("--max-trace", type=int, default=None, metavar="N", help="micro-ops per trace at most (1000)")
    p.add_argument("--perf-map", action="store_true", help="write /tmp/perf-PID.map so perf names each trace")
    p.add_argument(
        "--perf-jitdump", action="store_true",
        help="write /tmp/jit-PID.dump (code and .uop lines) for perf record -k mono, then perf inject --jit",
    )  # fmt: skip
    p.add_argument("--gdb", action="store_true", help="register compiled code with gdb's JIT interface")
    p.add_argument(
        "--passes", metavar="LIST",
        help=f"trace-level passes, comma-separated, in order (built in: {','.join(BUILTIN_PASSES)}; "
        "default: registers, with copy-and-patch; '' runs none)",
    )  # fmt: skip
    p.add_argument(
        "--target", type=_target, metavar="TARGET", help=f"{_TARGETS}: machine code for it; not the host's: emulated"
    )
    p.add_argument("--emulate", action="store_true", help="run the target's code in the emulator even on its own host")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="run each stencil alone in the emulator against the reference semantics")
    _targets_option(p, "both")
    p.add_argument("--op", help="one op, by name or mnemonic")
    p.add_argument("--samples", type=int, default=100, help="random inputs per op, edge values first (100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (0)")
    p.add_argument(
        "--opset", metavar="NAME|DIR",
        help="validate another op set: its cases on its C interpreter and every target, against its reference",
    )  # fmt: skip
    p.add_argument(
        "--stitcher",
        choices=[s.value for s in Stitcher],
        default=Stitcher.C.value,
        help="patch with the C fast path or the reference",
    )
    p.add_argument(
        "--off",
        choices=sorted(SWITCHED_OFF),
        help="validate the library built with this technique switched off (as bench --ablation builds it)",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("explore", help="write one HTML page: stencils side by side, a program's traces, the benchmark")
    p.add_argument("-o", "--out", default="explore.html", help="the HTML file to write (explore.html)")
    _targets_option(p, "both")
    p.add_argument("--program", metavar="P.uop", help="also run this program tiered and show what it compiled")
    p.add_argument("args", nargs="*", help="the program's integer arguments (with --program)")
    p.add_argument("--bench", metavar="FILE.json", help="also show this benchmark report (bench --json writes it)")
    p.add_argument("--opset", metavar="NAME|DIR", help="show this op set's stencils instead (docs/opsets.md)")
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser("bench", help="measure every figure in jit.tools.goals side by side, with intervals")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (under 3 minutes on 2 cores)")
    p.add_argument("--json", metavar="FILE", help="write the figures, machine and versions as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw run time per program and engine (log scale)")
    p.add_argument("--ablation", action="store_true", help="what each technique contributes, each switched off alone")
    p.add_argument(
        "--opset", metavar="NAME|DIR",
        help="an op set's benchmark: C interpreter against copy-and-patch (its own programs, or those named)",
    )  # fmt: skip
    p.add_argument("programs", nargs="*", metavar="PROGRAM", help="with --opset: the programs to time")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ProgramError as e:
        print(e, file=sys.stderr)
        return 2
    except JitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as e:  # the cache or an output file cannot be written
        where = f" ({e.filename})" if e.filename else ""
        print(f"error: {e.strerror or e}{where}; set JIT_CACHE_DIR to a writable directory", file=sys.stderr)
        return 2
