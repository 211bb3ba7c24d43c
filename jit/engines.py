"""The engines behind `python -m jit run`, by name.

Each engine is a `prepare(program, args)` that does the set-up and returns a
function that runs the program once: benchmarks time only the latter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from .cinterp import prepare_c
from .interp import prepare_py
from .ir import Program
from .native import prepare_eager
from .outcome import Outcome
from .tiering import prepare_tiered

Prepare = Callable[[Program, Sequence[int]], Callable[[], Outcome]]

PREPARE: dict[str, Prepare] = {
    "py": prepare_py,
    "switch": partial(prepare_c, engine="switch"),
    "tailcall": partial(prepare_c, engine="tailcall"),
    "jit-eager": prepare_eager,
    "jit": prepare_tiered,
}


def _runner(prepare: Prepare) -> Callable[[Program, Sequence[int]], Outcome]:
    return lambda program, args: prepare(program, args)()


ENGINES: dict[str, Callable[[Program, Sequence[int]], Outcome]] = {name: _runner(p) for name, p in PREPARE.items()}
