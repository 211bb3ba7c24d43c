"""The two machines the tiering controller can drive.

A machine pairs a tier 1 with a place to run traces, over one VM state:

* NativeMachine: tier 1 is the C interpreter (stencils/interp_tier1.c) and
  traces run natively; both work on the same C VMState.
* EmulatedMachine: tier 1 is the Python reference interpreter and traces run
  in the emulator (any target).  The program's memory lives in the
  emulator and the interpreter reads it there; the operand stack and the
  frames are copied across when control moves between the tiers.

Both implement jit.runtime.interfaces.TierMachine, which is all the
controller (jit.runtime.tiering) sees.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ..build.stencils import StencilLibrary
from ..codegen.step import Step
from ..lang.interp import Machine
from ..lang.ir import Program
from ..lang.outcome import Outcome
from ..limits import MAX_EXITS
from ..targets import get_target
from ..vmdef import FRAME_SIZE, pack_frame, unpack_frames
from .cinterp import NativeVM, encode
from .emulate import EXIT_COUNTS, FRAMES, MEMORY, VM_STACK, EmuCode, Emulator
from .interfaces import Backend, CompiledCode
from .native import NativeRuntime, native_runtime

NEVER = 1 << 62  # a counter that never runs out


class NativeMachine:
    def __init__(
        self,
        program: Program,
        args: Sequence[int],
        hot_loop: int,
        hot_call: int,
        max_trace: int,
        backend: Backend | None = None,
    ) -> None:
        """`backend` compiles and links traces: copy-and-patch (the default) or
        an LLVM backend (jit.runtime.llvm_backend)."""
        self.rt: NativeRuntime = native_runtime()
        self.backend: Backend = backend or self.rt
        self.library: StencilLibrary = self.rt.library
        self.vm = NativeVM.create(program, args)
        ffi, n = self.vm.ffi, len(program.code)
        self.lib, self.state = self.vm.lib, self.vm.state
        self.code = encode(program, ffi)
        self.counters = ffi.new("int64_t[]", [hot_loop] * n)
        self.call_counters = ffi.new("int64_t[]", [hot_call] * n)
        self.exit_counts = ffi.new("int64_t[]", MAX_EXITS)
        self.heads = ffi.new("int8_t[]", n)
        self.pcs = ffi.new("int64_t[]", max_trace)
        self.rec = ffi.new("Recorder *")
        self.rec.pcs, self.rec.heads, self.rec.max = self.pcs, self.heads, max_trace
        self.state.counters, self.state.exit_counts = self.counters, self.exit_counts
        self.state.call_counters = self.call_counters
        self.compiled: list[CompiledCode] = []

    status = property(lambda self: self.state.status)
    pc = property(lambda self: self.state.pc)
    exit_index = property(lambda self: self.state.exit_index)
    trace_ops = property(lambda self: self.state.trace_ops)
    interp_ops = property(lambda self: self.state.interp_ops)

    def interpret(self, pc: int) -> int:
        self.lib.run_tier1(self.state, self.code, pc)
        return self.state.status

    def record(self, start: int, limit: int) -> list[int]:
        rec = self.rec
        rec.len, rec.start, rec.depth, rec.max = 0, start, 0, limit
        self.lib.run_record(self.state, self.code, start, rec)
        return [self.pcs[k] for k in range(rec.len)]

    def compile(self, steps: Sequence[Step]) -> CompiledCode:
        compiled = self.backend.compile(steps)
        self.compiled.append(compiled)
        return compiled

    def enter(self, address: int) -> int:
        return self.rt.enter(self.state, address)

    def link(self, code: CompiledCode, step: int, destination: int) -> None:
        self.backend.link(code, step, destination)

    def mark_head(self, pc: int) -> None:
        self.heads[pc] = 1
        self.counters[pc] = 0  # tier 1 hands over at every back-edge from now on

    def never(self, pc: int) -> None:
        self.counters[pc] = NEVER

    def never_call(self, pc: int) -> None:
        self.call_counters[pc] = NEVER

    def exit_count(self, exit_id: int) -> int:
        return self.exit_counts[exit_id]

    def outcome(self) -> Outcome:
        return self.vm.outcome()

    def close(self) -> None:
        for compiled in self.compiled:
            compiled.free()
        self.compiled.clear()
        self.vm.close()


class EmuMemory:
    """The program's memory as the Python interpreter sees it: slots in the emulator."""

    def __init__(self, emu: Emulator, size: int) -> None:
        self.emu, self.size = emu, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> int:
        return self.emu.slot(MEMORY + 8 * i)

    def __setitem__(self, i: int, value: int | float) -> None:
        self.emu.uc.mem_write(MEMORY + 8 * i, _pack(value))


def _pack(value: int | float) -> bytes:
    return struct.pack("<d", value) if value.__class__ is float else struct.pack("<q", value)


class EmulatedMachine:
    def __init__(self, program: Program, args: Sequence[int], target: str, hot_loop: int, hot_call: int) -> None:
        self.program = program
        self.emu = Emulator(target, program, args)
        self.library = self.emu.library
        n = len(program.code)
        self.counters, self.call_counters = [hot_loop] * n, [hot_call] * n  # tier 1's, by IR position
        self.py = Machine(program, args, EmuMemory(self.emu, program.memory), self.counters, self.call_counters)
        self.emu.out = self.py.out  # one output, whoever prints
        self.heads: set[int] = set()
        self.in_emulator = False  # where the stack and frames are now

    @property
    def status(self) -> int:
        return self.emu.get("status") if self.in_emulator else self.py.status

    @property
    def pc(self) -> int:
        return self.emu.get("pc") if self.in_emulator else self.py.pc

    exit_index = property(lambda self: self.emu.get("exit_index"))
    trace_ops = property(lambda self: self.emu.get("trace_ops"))
    interp_ops = property(lambda self: self.py.ops)

    def _to_python(self) -> None:
        if not self.in_emulator:
            return
        emu, py = self.emu, self.py
        py.stack[:] = emu.stack()
        py.fp = (emu.get("fp") - VM_STACK) // 8
        depth = emu.get("depth")
        records = unpack_frames(bytes(emu.uc.mem_read(FRAMES, FRAME_SIZE * depth))) if depth else []
        py.frames[:] = [(f["ret_pc"], (f["fp"] - VM_STACK) // 8, f["ret_code"]) for f in records]
        py.status, py.pc, py.error = emu.get("status"), emu.get("pc"), emu.get("error")
        self.in_emulator = False

    def _to_emulator(self) -> None:
        if self.in_emulator:
            return
        emu, py = self.emu, self.py
        if py.stack:
            emu.uc.mem_write(VM_STACK, b"".join(_pack(v) for v in py.stack))
        frames = b"".join(pack_frame(r, code, VM_STACK + 8 * fp) for r, fp, code in py.frames)
        if frames:
            emu.uc.mem_write(FRAMES, frames)
        for name, value in (
            ("sp", VM_STACK + 8 * len(py.stack)),
            ("fp", VM_STACK + 8 * py.fp),
            ("depth", len(py.frames)),
            ("status", 0),
        ):
            emu.put(name, value)
        self.in_emulator = True

    def interpret(self, pc: int) -> int:
        self._to_python()
        return self.py.interpret(pc)

    def record(self, start: int, limit: int) -> list[int]:
        self._to_python()
        return self.py.record(start, limit, self.heads)

    def compile(self, steps: Sequence[Step]) -> EmuCode:
        return self.emu.compile(steps)

    def enter(self, address: int) -> int:
        self._to_emulator()
        return self.emu.enter(address)

    def link(self, code: CompiledCode, step: int, destination: int) -> None:
        at = code.address(step)
        self.emu.write_code(at, get_target(self.library.target).jump(at, destination))

    def mark_head(self, pc: int) -> None:
        self.heads.add(pc)
        self.counters[pc] = 0

    def never(self, pc: int) -> None:
        self.counters[pc] = NEVER

    def never_call(self, pc: int) -> None:
        self.call_counters[pc] = NEVER

    def exit_count(self, exit_id: int) -> int:
        return self.emu.slot(EXIT_COUNTS + 8 * exit_id)

    def outcome(self) -> Outcome:
        self._to_python()
        return self.py.outcome()

    def close(self) -> None:
        pass
