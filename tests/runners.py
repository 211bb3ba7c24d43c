"""Runners for tests that run programs on every engine and configuration and compare them.

(jit.runtime.engines has the engines users choose; this adds the test-only
configurations: thresholds at 1, emulated targets, switched-off techniques.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import cache

from jit.codegen.passes import BUILTIN_PASSES
from jit.lang.ir import Program
from jit.lang.outcome import Outcome
from jit.lang.uop import parse
from jit.runtime.emulate import prepare_emulated_eager
from jit.runtime.engines import ENGINES
from jit.runtime.native import NativeRuntime, native_runtime, prepare_eager
from jit.runtime.tiering import TierConfig, prepare_tiered


def _eager_tiering(program: Program, args: Sequence[int]) -> Outcome:
    """The tiered engine with every threshold at 1: traces and side traces at once."""
    return prepare_tiered(program, args, TierConfig(hot_loop=1, hot_exit=1, max_trace=50))()


def _hot_calls(program: Program, args: Sequence[int]) -> Outcome:
    """Every function compiled whole at its first call, loops traced soon after."""
    return prepare_tiered(program, args, HOT_CALLS)()


HOT_CALLS = TierConfig(hot_loop=3, hot_call=1, hot_exit=1, max_trace=50)
HOT_COUNTED = TierConfig(hot_loop=1, hot_exit=1, max_trace=50, accounting=True)  # COUNT and TAKE_EXIT steps


def _tiered(config: TierConfig):
    def run(program: Program, args: Sequence[int]) -> Outcome:
        return prepare_tiered(program, args, config)()

    return run


def _emulated(target: str, eager: bool, emulate: bool = False, config: TierConfig | None = None):
    def run(program: Program, args: Sequence[int]) -> Outcome:
        if eager:
            return prepare_emulated_eager(program, args, target)()
        hot = config or TierConfig(hot_loop=1, hot_exit=1, max_trace=50)
        return prepare_tiered(program, args, hot, target=target, emulate=emulate)()

    return run


@cache
def _uncached_runtime() -> NativeRuntime:
    """Copy-and-patch with every step's plain stencil: the whole stack in memory."""
    return NativeRuntime(native_runtime().library, stack_cache=False)


def _no_stack_cache(eager: bool):
    def run(program: Program, args: Sequence[int]) -> Outcome:
        if eager:
            return prepare_eager(program, args, backend=_uncached_runtime())()
        config = TierConfig(hot_loop=1, hot_exit=1, max_trace=50)
        return prepare_tiered(program, args, config, backend=_uncached_runtime())()

    return run


def _llvm(opt: int, whole: bool = True, config: TierConfig | None = None):
    """The LLVM peer (whole-function lowering, or one function per step), eager or tiered with `config`."""

    def run(program: Program, args: Sequence[int]) -> Outcome:
        from jit.runtime.llvm_backend import llvm_backend

        backend = llvm_backend(opt, whole)
        if config is None:
            return prepare_eager(program, args, backend=backend)()
        return prepare_tiered(program, args, config, backend=backend)()

    return run


def _passes(names: tuple[str, ...], eager: bool):
    """Copy-and-patch with only these trace-level passes (jit.codegen.passes)."""

    def run(program: Program, args: Sequence[int]) -> Outcome:
        if eager:
            return prepare_eager(program, args, passes=names)()
        return prepare_tiered(program, args, TierConfig(hot_loop=1, hot_exit=1, max_trace=50, passes=names))()

    return run


def _each_pass_alone() -> dict[str, Callable[[Program, Sequence[int]], Outcome]]:
    return {f"jit-hot:pass-{name}": _passes((name,), False) for name in BUILTIN_PASSES}


RUNNERS: dict[str, Callable[[Program, Sequence[int]], Outcome]] = {
    **ENGINES,
    "jit-hot": _eager_tiering,
    "jit-hot-calls": _hot_calls,
    "jit-hot:accounting": _tiered(HOT_COUNTED),
    "jit-hot:python-tiering": _tiered(TierConfig(hot_loop=1, hot_exit=1, max_trace=50, c_tiering=False)),
    "jit-hot:controller-compiles": _tiered(TierConfig(hot_loop=1, hot_exit=1, max_trace=50, c_compiles=False)),
    "jit-hot-calls:accounting": _tiered(dataclasses.replace(HOT_CALLS, accounting=True)),
    "aarch64-eager": _emulated("aarch64-linux", eager=True),
    "aarch64-jit-hot": _emulated("aarch64-linux", eager=False),
    "aarch64-jit-hot-calls": _emulated("aarch64-linux", eager=False, config=HOT_CALLS),
    "aarch64-jit-hot:accounting": _emulated("aarch64-linux", eager=False, config=HOT_COUNTED),
    "x86_64-emulated-jit-hot": _emulated("x86_64-linux", eager=False, emulate=True),
    "jit-eager:no-stack-cache": _no_stack_cache(eager=True),
    "jit-hot:no-stack-cache": _no_stack_cache(eager=False),
    "jit-eager:llvm-steps-O2": _llvm(2, whole=False),
    "jit-hot:llvm-O2": _llvm(2, config=TierConfig(hot_loop=1, hot_exit=1, max_trace=50)),
    "jit-hot-calls:llvm-O0": _llvm(0, config=HOT_CALLS),
    "jit-hot-calls:llvm-O2": _llvm(2, config=HOT_CALLS),
    "jit-eager:passes": _passes(BUILTIN_PASSES, eager=True),
    "jit-eager:no-passes": _passes((), eager=True),  # (copy-and-patch runs `registers` by default)
    "jit-hot:no-passes": _passes((), eager=False),
    "jit-hot:passes": _passes(BUILTIN_PASSES, eager=False),
    **_each_pass_alone(),
}
ALL = sorted(RUNNERS)


def run_all(program: Program, args: Sequence[int] = ()) -> dict[str, Outcome]:
    return {name: RUNNERS[name](program, args) for name in ALL}


def agree(program: Program | str, args: Sequence[int] = ()) -> Outcome:
    """Run on every engine, check they agree exactly, return the common outcome."""
    if isinstance(program, str):
        program = parse(program, "test.uop")
    outcomes = run_all(program, args)
    reference = outcomes["py"]
    for name, outcome in outcomes.items():
        assert outcome == reference, f"{name} disagrees with py:\n{outcome}\n{reference}"
    return reference
