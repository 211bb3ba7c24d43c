"""The engines behind `python -m jit run`, by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .cinterp import run_c
from .interp import run_py
from .ir import Program
from .outcome import Outcome

Engine = Callable[[Program, Sequence[int]], Outcome]

ENGINES: dict[str, Engine] = {
    "py": run_py,
    "switch": lambda program, args: run_c(program, args, "switch"),
    "tailcall": lambda program, args: run_c(program, args, "tailcall"),
}
