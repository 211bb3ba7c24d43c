"""What a run produces, and the runtime error messages every engine shares.

Engines report only an error code, the IR position and their stack; the
message is made here, once, so that it is the same for all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..limits import MAX_CALL_DEPTH, STACK_SLOTS
from ..vmdef import ERR_CALL_DEPTH, ERR_DIV_ZERO, ERR_MEM_RANGE, ERR_OUTPUT, ERR_STACK_OVERFLOW
from .ir import Program

HALTED = "halted"
ERROR = "error"


@dataclass(frozen=True)
class Outcome:
    output: bytes
    status: str  # HALTED or ERROR
    pc: int  # where the program halted or failed
    error: str = ""  # "FILE:LINE: what" when status is ERROR


def error_message(program: Program, code: int, pc: int, top: tuple[int, ...]) -> str:
    """FILE:LINE: what.  `top` holds the top stack slots as integers, topmost last."""
    op = program.code[pc].info.mnemonic
    if code == ERR_DIV_ZERO:
        what = f"{op}: integer {'division' if op == 'div' else 'modulo'} by zero"
    elif code == ERR_MEM_RANGE:
        index = top[-1] if op == "mload" else top[-2]
        what = f"{op}: memory index {index} out of range (memory has {program.memory} slots)"
    elif code == ERR_CALL_DEPTH:
        what = f"call: call depth exceeds {MAX_CALL_DEPTH} (runaway recursion?)"
    elif code == ERR_STACK_OVERFLOW:
        what = f"call: stack overflow ({STACK_SLOTS} slots)"
    elif code == ERR_OUTPUT:
        what = f"{op}: output failed"
    else:
        what = f"{op}: unknown runtime error {code}"
    return f"{program.where(pc)}: {what}"


def format_float(value: float, precision: int) -> bytes:
    """printf("%.*f"), except that every NaN prints as nan (x86 would say -nan)."""
    if value != value:
        return b"nan"
    return b"%.*f" % (precision, value)


class Prepared:
    """A run that is set up and ready.  Calling it runs the program once and
    returns the Outcome; `seconds` is then how long the engine ran, and
    nothing else: set-up came before, and reading the outcome and freeing
    the VM and the code come after (a benchmark must time one thing).
    `stats` is the tiered engine's TierStats, or None."""

    def __init__(
        self,
        enter: Callable[[], object],
        outcome: Callable[[], Outcome],
        close: Callable[[], object] = lambda: None,
        stats: object = None,
    ) -> None:
        self._enter, self._outcome, self._close = enter, outcome, close
        self.stats = stats
        self.seconds = float("nan")

    def __call__(self) -> Outcome:
        try:
            t0 = time.perf_counter()
            self._enter()
            self.seconds = time.perf_counter() - t0
            return self._outcome()
        finally:
            self._close()
