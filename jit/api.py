"""The public API: load a program, run it on any engine, look at the stencils, validate, benchmark.

    import jit

    program = jit.load("bench/programs/fib.uop")
    result = jit.run(program, [20])          # tiered copy-and-patch, the default
    print(result.output.decode(), end="")    # 6765
    print(result.stats.report())             # what the tiered engine did

Everything a user can get wrong is checked here, once, exactly as the
command line (a thin layer over these functions) checks it: a wrong
argument count, an argument outside int64, an engine option that does not
apply.  Those raise JitError with a one-line message; a program that does
not parse or verify raises ProgramError, which lists every FILE:LINE:COL
problem.  A runtime error of the program itself (division by zero, memory
out of range) is not an exception: it is a Result with status "error".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .errors import JitError
from .lang.ir import INT64_MAX, INT64_MIN, Program
from .runtime.config import OBSERVER_FLAGS, EagerStats, TierConfig, TierStats

if TYPE_CHECKING:
    from .build.stencils import StencilLibrary
    from .lang.outcome import Prepared
    from .runtime.interfaces import CompiledCode
    from .runtime.llvm_backend import LLVMBackend
    from .tools.validate import Report

Engine = Literal["py", "switch", "tailcall", "jit"]
Backend = Literal["copy-and-patch", "llvm-O0", "llvm-O2"]
ENGINES: tuple[Engine, ...] = ("py", "switch", "tailcall", "jit")
BACKENDS: tuple[Backend, ...] = ("copy-and-patch", "llvm-O0", "llvm-O2")
LLVM_LEVELS: dict[str, int | None] = {"copy-and-patch": None, "llvm-O0": 0, "llvm-O2": 2}  # the LLVM peer's -O level


def parse(text: str, name: str = "<string>") -> Program:
    """A program from `.uop` text, verified; `name` is the file name errors report."""
    from .lang.uop import parse as parse_text

    if not isinstance(text, str):
        raise JitError(f"parse takes the program's text as a str, not {type(text).__name__}")
    return parse_text(text, name)


def load(path: str | Path) -> Program:
    """A program from a `.uop` file, verified."""
    from .lang.uop import parse_file

    return parse_file(path)


@dataclass(frozen=True)
class Result:
    """What one run produced."""

    output: bytes  # everything the program printed
    status: str  # "halted" or "error"
    error: str  # "FILE:LINE: what" when status is "error", else ""
    pc: int  # the IR position where it halted or failed
    stats: TierStats | EagerStats | None  # the tiered engine's or the eager compile's; None for interpreters
    seconds: float  # running only: set-up, compiling (eager) and freeing are not in it

    @property
    def ok(self) -> bool:
        return self.status == "halted"


def check_args(program: Program, args: Iterable[int]) -> list[int]:
    """The program's arguments, checked: as many as it declares (`.args N`),
    each an int in int64 range.  (An engine given too few would read past
    the end of its argument array.)"""
    if isinstance(args, (str, bytes)) or not isinstance(args, Iterable):
        raise JitError(f"{program.filename}: arguments are a sequence of integers, not {type(args).__name__}")
    values = list(args)
    if len(values) != program.nargs:
        raise JitError(f"{program.filename}: expects {program.nargs} integer argument(s), got {len(values)}")
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool):
            raise JitError(f"{program.filename}: argument {value!r} is not an integer")
        if not INT64_MIN <= value <= INT64_MAX:
            raise JitError(f"{program.filename}: argument {value} does not fit in 64 bits")
    return values


def run(
    program: Program,
    args: Iterable[int] = (),
    *,
    engine: Engine = "jit",
    eager: bool = False,
    backend: Backend = "copy-and-patch",
    target: str | None = None,
    emulate: bool = False,
    config: TierConfig | None = None,
    on_compile: Callable[[CompiledCode, object, bool], None] | None = None,
    passes: Sequence[str] | None = None,
) -> Result:
    """Run `program` once with `args`.

    engine: "py" (the reference interpreter), "switch" or "tailcall" (the C
    interpreters), or "jit": tiered (tier 1 finds hot loops and functions,
    copy-and-patch compiles them), or with eager=True the whole program
    compiled up front.  backend: "copy-and-patch", or the LLVM peer at
    "llvm-O0"/"llvm-O2" (jit engine, natively).  target: a target name
    (jit.targets.TARGETS) other than the host's runs the machine code under
    emulation; emulate=True emulates the host's too.  config: the tiered
    engine's thresholds.  on_compile(code, shape, side) is called for each
    trace or function the tiered engine compiles.  passes: the trace-level
    passes the jit engine runs, in order (jit.codegen.passes; default:
    `registers` with copy-and-patch, none with the LLVM peer; [] runs none),
    for eager and tiered compiles alike.
    """
    from .lang.verify import verify
    from .targets import host_target, target_name

    if not isinstance(program, Program):
        raise JitError(f"run takes a Program (from jit.load or jit.parse), not {type(program).__name__}")
    program = verify(program)  # a Program made by hand is held to the same rules as a parsed one
    values = check_args(program, args)
    if engine not in ENGINES:
        raise JitError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if backend not in BACKENDS:
        raise JitError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if target is not None:
        target = target_name(target)
    host = host_target()
    where = target or host
    if where is None:
        raise JitError("this machine has no native target: choose one with target=")
    emulated = emulate or where != host
    jit = engine == "jit"
    if eager and not jit:
        raise JitError("eager goes with the jit engine")
    if (target is not None or emulate) and not jit:
        raise JitError("a target and emulation go with the jit engine")
    if backend != "copy-and-patch" and (not jit or emulated):
        raise JitError(f"backend {backend} goes with the jit engine, natively")
    if (config is not None or on_compile is not None) and (not jit or eager):
        raise JitError("tiering settings go with the tiered jit engine (not eager)")
    if config is not None and not isinstance(config, TierConfig):
        raise JitError(f"config is a TierConfig, not {type(config).__name__}")
    if passes is not None:
        if not jit:
            raise JitError("passes go with the jit engine: interpreters compile nothing")
        try:
            chosen = TierConfig(passes=tuple(passes)).passes
        except (TypeError, ValueError) as e:
            raise JitError(str(e)) from None
        if not eager:
            config = dataclasses.replace(config or TierConfig(), passes=chosen)
    if config is not None and config.observed and (backend != "copy-and-patch" or emulated):
        wanted = next(n for n in OBSERVER_FLAGS if getattr(config, n))
        why = "the LLVM backend does not say where each step is" if backend != "copy-and-patch" else "emulated code"
        raise JitError(f"{wanted} describes native copy-and-patch code in this process, not {why}")

    stats: TierStats | EagerStats | None = None
    prepared: Prepared
    if engine == "py":
        from .lang.interp import prepare_py

        prepared = prepare_py(program, values)
    elif not jit:
        from .runtime.cinterp import prepare_c

        prepared = prepare_c(program, values, engine)
    elif eager:
        prepared = _prepare_eager(program, values, backend, where, emulated, passes)
    else:
        from .runtime.tiering import prepare_tiered

        prepared = prepare_tiered(
            program,
            values,
            config,
            on_compile,
            where,
            emulate,
            _llvm(backend),
        )
    if isinstance(prepared.stats, TierStats | EagerStats):
        stats = prepared.stats
    outcome = prepared()
    return Result(outcome.output, outcome.status, outcome.error, outcome.pc, stats, prepared.seconds)


def _llvm(backend: str) -> LLVMBackend | None:
    if LLVM_LEVELS.get(backend) is None:
        return None
    from .runtime.llvm_backend import llvm_backend

    return llvm_backend(LLVM_LEVELS[backend])


def _prepare_eager(
    program: Program, values: list[int], backend: str, target: str, emulated: bool, passes: Sequence[str] | None
) -> Prepared:
    from .codegen.passes import DEFAULT_PASSES
    from .runtime.emulate import prepare_emulated_eager
    from .runtime.native import prepare_eager

    chosen = None if passes is None else tuple(passes)
    if emulated:
        return prepare_emulated_eager(program, values, target, DEFAULT_PASSES if chosen is None else chosen)
    return prepare_eager(program, values, backend=_llvm(backend), passes=chosen)


def library(target: str | None = None) -> StencilLibrary:
    """The stencil library for `target` (default: the host's), built and cached if need be."""
    from .build.library import load_library
    from .targets import host_target, target_name

    name = target or host_target()
    if name is None:
        raise JitError("this machine has no native target: name one")
    return load_library(target_name(name))


def validate(target: str | None = None, ops: Sequence[str] | None = None, samples: int = 40, seed: int = 0) -> Report:
    """Run every stencil of `ops` (names or mnemonics; default: all) alone in the
    emulator for `target`, on `samples` drawn inputs each, against the reference."""
    from .lang.optable import optable
    from .targets import host_target, target_name
    from .tools.validate import validate as run_validate

    name = target_name(target or host_target() or "x86_64-linux")
    if samples < 1:
        raise JitError("samples must be at least 1")
    table = {op.name.lower(): op for op in optable()} | {op.mnemonic: op for op in optable()}
    wanted = [table.get(o.lower()) for o in ops] if ops is not None else list(optable())
    if any(w is None for w in wanted):
        unknown = [o for o, w in zip(ops or (), wanted, strict=False) if w is None]
        raise JitError(f"unknown op(s): {', '.join(unknown)}")
    return run_validate(name, [w for w in wanted if w is not None], samples, seed)


def benchmark(quick: bool = True, sizes: dict[str, int] | None = None):
    """The benchmark report (jit.tools.benchmark.Report), as `python -m jit bench` measures it."""
    from .tools.benchmark import measure

    return measure(quick, sizes)
