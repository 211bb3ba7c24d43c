"""The interfaces between the runtime's parts, written down as Protocols.

A backend compiles steps into code and re-patches a side exit to jump
elsewhere (linking); compiled code says where each step starts and frees
itself.  Three backends implement them: copy-and-patch natively
(jit.runtime.native.NativeRuntime), copy-and-patch under emulation
(jit.runtime.emulate.Emulator, linked through its machine) and the LLVM peer
(jit.runtime.llvm_backend.LLVMBackend).  A tier machine is what the tiering
controller drives: a tier 1 and a place to run compiled code, over one VM
state (jit.runtime.machines: NativeMachine, EmulatedMachine).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..codegen.passes import DEFAULT_PASSES
from ..codegen.step import Step
from ..codegen.trace import Handover, TraceShape, form
from ..lang.ir import Program
from ..lang.outcome import Outcome


class CompiledCode(Protocol):
    """Code for a list of steps, wherever it lives."""

    @property
    def steps(self) -> Sequence[Step]: ...

    def address(self, step: int) -> int:
        """Where step `step` starts (what enters it, or what linking re-patches)."""
        ...

    def free(self) -> None: ...

    def size(self) -> int | None:
        """Bytes of code and data, where the backend knows (MCJIT does not say)."""
        ...


class Backend(Protocol):
    """A compiler of steps."""

    # The passes compiles for this backend run when none are chosen (eager and tiered).
    default_passes: tuple[str, ...]

    def compile(self, steps: Sequence[Step]) -> CompiledCode: ...

    def compile_handover(self, program: Program, handover: Handover) -> tuple[TraceShape, CompiledCode]:
        """Form what tier 1 handed over and compile it (FormsThenCompiles, unless the backend does better)."""
        ...

    def prepare(self, program: Program | None = None) -> None:
        """Set the compiler up (its imports and tables), once, ahead of the
        first compile, and for `program` what it needs of it: what a
        compile then takes is its own."""
        ...

    def link(self, code: CompiledCode, step: int, destination: int) -> None:
        """Re-patch step `step` of `code` (an exit) to jump to `destination`, W^X throughout."""
        ...


class FormsThenCompiles:
    """A backend's compile from a handover, unless it has a faster one: the
    steps formed (jit.codegen.trace.form), then compiled."""

    default_passes: tuple[str, ...] = DEFAULT_PASSES

    def compile(self, steps: Sequence[Step]) -> CompiledCode:
        raise NotImplementedError

    def compile_handover(self, program: Program, handover: Handover) -> tuple[TraceShape, CompiledCode]:
        shape = form(program, handover)
        return shape, self.compile(shape.steps)

    def prepare(self, program: Program | None = None) -> None:
        pass  # (nothing to set up beyond what making the backend did)


class TierMachine(Protocol):
    """What the tiering controller (jit.runtime.tiering) sees of a machine."""

    @property
    def status(self) -> int: ...
    @property
    def pc(self) -> int: ...
    @property
    def exit_index(self) -> int: ...
    @property
    def trace_ops(self) -> int: ...
    @property
    def interp_ops(self) -> int: ...

    def interpret(self, pc: int) -> int:
        """Run tier 1 from `pc` until the program ends or a loop or a function is hot."""
        ...

    def record(self, start: int, limit: int) -> Sequence[int]:
        """Tier 1 executes one path from `start`, noting the IR positions."""
        ...

    def compile_handover(self, program: Program, handover: Handover) -> tuple[TraceShape, CompiledCode]:
        """The handover formed and compiled, by the machine's backend."""
        ...

    def prepare_compiles(self, program: Program) -> None:
        """The backend set up for compiling `program` (Backend.prepare)."""
        ...

    def enter(self, address: int) -> int:
        """Run compiled code from `address` until it returns; the status."""
        ...

    def link(self, code: CompiledCode, step: int, destination: int) -> None: ...

    def mark_head(self, pc: int, code: CompiledCode) -> None:
        """A loop header has a trace now (`code`): tier 1 hands over at every back-edge to it."""
        ...

    def settle(self, exit_id: int) -> None:
        """An exit is linked, or never will be: nothing more to report of it."""
        ...

    def never(self, pc: int) -> None:
        """A loop header that is not traced again."""
        ...

    def never_call(self, pc: int) -> None:
        """A function that is not compiled (tier 1 keeps running it)."""
        ...

    def exit_count(self, exit_id: int) -> int: ...

    def outcome(self) -> Outcome: ...

    def close(self) -> None: ...
