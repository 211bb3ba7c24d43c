"""What an op set's Python module provides, and what the engines give back.

jit.opsets.engines runs a program the module parsed on any engine: the
module's reference interpreter, the C interpreter of the op set's bodies,
or stitched stencils natively or under emulation.  The module owns
everything specific to its VM (its program format, its state's layout,
what a result is); the engines own memory, code and running.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..codegen.step import Step
from ..errors import JitError


@dataclass(frozen=True)
class Outcome:
    """How a run ended.  Engines must agree on all of it."""

    value: int | None  # the program's result (eBPF: r0); None after an error
    error: str | None = None  # the runtime error's message
    observed: tuple[int, ...] = ()  # the rest of the final state that must match (registers, memory)


class OpSetModule(Protocol):
    """The contract of an op set's `python` file (docs/opsets.md)."""

    STATE_SIZE: int  # bytes of the state the stencils receive a pointer to

    def parse(self, path: Path) -> Any:
        """A program from a file; a bad one raises jit.errors.ProgramError naming file:line."""

    def steps(self, program: Any) -> list[Step]:
        """The program as steps: op names from the table, operands, jump targets by step index."""

    def buffers(self, program: Any) -> dict[str, bytes]:
        """The memory a run needs besides the state, by name, with initial contents."""

    def make_state(self, program: Any, addresses: Mapping[str, int]) -> bytes:
        """The initial state, given where each buffer is."""

    def outcome(
        self, program: Any, state: bytes, buffers: Mapping[str, bytes], addresses: Mapping[str, int]
    ) -> Outcome:
        """The outcome, from the final state and buffers."""

    def interpret(self, program: Any) -> Outcome:
        """The reference semantics, in Python."""

    def check(self, program: Any, outcome: Outcome) -> str | None:
        """What the program's file expected and did not get, if anything."""

    def format(self, outcome: Outcome) -> str:
        """The result as the command line prints it."""

    def cases(self, op: str, rng: random.Random) -> list[Any]:
        """Small programs that exercise `op` (jit.opsets.validate runs them on every engine)."""


@dataclass(frozen=True)
class Benchmark:
    """An op set's own benchmark (its module's optional `benchmark(quick)`):
    the parsed programs to time, what each does, and how to check them."""

    programs: dict[str, Any]  # name -> parsed program, with its input
    what: dict[str, str]  # name -> what it does
    checks: dict[str, Any]  # name -> a program every engine runs first, to agree on (e.g. a short input)
    input_bytes: dict[str, int] = field(default_factory=dict)  # name -> bytes of input, if it has one
    count: Callable[[Any], int] | None = None  # a program's instructions (default: its steps)
    title: str | None = None  # what the report calls the op set (default: "op set NAME")


# What the engines call, as the protocol above declares it (jit.opsets.OpSet.runnable checks it).
CONTRACT = (
    *OpSetModule.__annotations__,
    *(name for name, value in vars(OpSetModule).items() if callable(value) and not name.startswith("_")),
)


class Rejected(JitError):
    """A program that parses but is not a valid program of the op set (an
    unknown opcode, a jump outside it): like a runtime error, exit status 1."""
