"""The engines behind `python -m jit run`, by name.

Each engine is a `prepare(program, args)` that does the set-up and returns a
function that runs the program once: benchmarks time only the latter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from ..api import LLVM_LEVELS
from ..lang.interp import prepare_py
from ..lang.ir import Program
from ..lang.outcome import Outcome, Prepared
from .cinterp import prepare_c
from .native import prepare_eager
from .tiering import prepare_tiered

Prepare = Callable[[Program, Sequence[int]], Prepared]

PREPARE: dict[str, Prepare] = {
    "py": prepare_py,
    "switch": partial(prepare_c, engine="switch"),
    "tailcall": partial(prepare_c, engine="tailcall"),
    "jit-eager": prepare_eager,
    "jit": prepare_tiered,
}


def _runner(prepare: Prepare) -> Callable[[Program, Sequence[int]], Outcome]:
    return lambda program, args: prepare(program, args)()


def _with_llvm(prepare, opt: int) -> Prepare:
    def prep(program: Program, args: Sequence[int]):
        from .llvm_backend import llvm_backend

        return prepare(program, args, backend=llvm_backend(opt))

    return prep


for _name, _opt in LLVM_LEVELS.items():
    if _opt is not None:
        PREPARE[f"jit-eager:{_name}"] = _with_llvm(prepare_eager, _opt)
        PREPARE[f"jit:{_name}"] = _with_llvm(prepare_tiered, _opt)

ENGINES: dict[str, Callable[[Program, Sequence[int]], Outcome]] = {name: _runner(p) for name, p in PREPARE.items()}
