"""The machines the tiering controller can drive (the emulated one lives with the emulator).

A machine pairs a tier 1 with a place to run traces, over one VM state:

* NativeMachine: tier 1 is the C interpreter (stencils/interp_tier1.c) and
  traces run natively; both work on the same C VMState, and the loop
  between them can run in C too (run_tiers: stencils/tiers.c).
* EmulatedMachine: tier 1 is the Python reference interpreter and traces run
  in the emulator (any target).  The program's memory lives in the
  emulator and the interpreter reads it there; the operand stack and the
  frames are copied across when control moves between the tiers.

Both implement jit.runtime.interfaces.TierMachine, which is all the
controller (jit.runtime.tiering) sees.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ..build.stencils import StencilLibrary
from ..codegen.trace import Handover, TraceShape
from ..errors import JitError
from ..lang.ir import Program
from ..lang.outcome import Outcome
from ..limits import MAX_EXITS, NEVER
from .cinterp import NativeVM, encode
from .interfaces import Backend, CompiledCode
from .native import NativeRuntime, RecordedCode, native_runtime

# Compiles the loop between the tiers makes before the controller must take them.
LOG = 64


class NativeMachine:
    def __init__(
        self,
        program: Program,
        args: Sequence[int],
        hot_loop: int,
        hot_call: int,
        max_trace: int,
        backend: Backend | None,
        hot_exit: int,
        accounting: bool,
    ) -> None:
        """`backend` compiles and links traces: copy-and-patch (None) or an
        LLVM backend (jit.runtime.llvm_backend); `hot_exit` and `accounting`
        are the TierConfig's, for the loop between the tiers in C."""
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
        # The loop between the tiers in C (stencils/tiers.c) and what it counts.
        self.trace_at = ffi.new("void *[]", n)
        self.returns = ffi.new("int64_t[]", MAX_EXITS)
        self.settled = ffi.new("uint8_t[]", MAX_EXITS)
        loop = self.loop = ffi.new("TierLoop *")
        loop.enter, loop.trace_at, loop.ncode = self.rt.shim, self.trace_at, n
        loop.returns, loop.settled, loop.nexits = self.returns, self.settled, MAX_EXITS
        loop.passes = self.exit_counts if accounting else ffi.NULL
        loop.hot_exit = hot_exit
        self.max_trace = max_trace
        self.log: Any = None  # the loop's logs of its own compiles and links, and where exits are (compile_in_loop)
        self.links: Any = None
        self.exit_at: Any = None
        self.exit_rw: Any = None
        self._ready: Callable[[], int] | None = None  # sets the compiler up for them
        self._paths: Any = None  # (compile_paths')

    status = property(lambda self: self.state.status)
    pc = property(lambda self: self.state.pc)
    exit_index = property(lambda self: self.state.exit_index)
    trace_ops = property(lambda self: self.state.trace_ops)
    interp_ops = property(lambda self: self.state.interp_ops)

    def interpret(self, pc: int) -> int:
        self.lib.run_tier1(self.state, self.code, pc)
        return self.state.status

    def record(self, start: int, limit: int) -> Sequence[int]:
        rec = self.rec
        rec.len, rec.start, rec.depth, rec.max = 0, start, 0, limit
        self.lib.run_record(self.state, self.code, start, rec)
        return self.recorded()

    def recorded(self) -> Sequence[int]:
        """The path the recorder holds (the last recorded, here or by the loop in C)."""
        rec = self.rec
        pcs = array("q")  # (what jit.codegen.cform hands C as it is)
        pcs.frombytes(self.vm.ffi.buffer(self.pcs, 8 * rec.len))
        return pcs

    def compile_handover(self, program: Program, handover: Handover) -> tuple[TraceShape, CompiledCode]:
        shape, compiled = self.backend.compile_handover(program, handover)
        self.compiled.append(compiled)
        if self._ready is not None and isinstance(compiled, RecordedCode) and shape.exits:
            chunk = compiled.chunk  # (the loop in C links its exits, through the chunk's writable view)
            self.lib.jit_note_exits(self.loop, compiled.record.pointer, chunk.view - chunk.address)
        return shape, compiled

    def prepare_compiles(self, program: Program) -> None:
        self.backend.prepare(program)

    def compile_in_loop(self, program: Program, superinstructions: bool, accounting: bool, registers: bool) -> bool:
        """Let the loop between the tiers trace hot loops and link hot exits
        itself (stencils/tiers.c), compiling with these switches (registers:
        the registers pass, which form.c runs): whether it can
        (copy-and-patch's one-call compile only)."""
        rt = self.backend
        if not isinstance(rt, NativeRuntime):
            return False
        job, run = rt.one_call_compiler(), rt.arena.code_run()
        if job is None or run is None:
            return False
        loop, ffi = self.loop, self.vm.ffi
        self._ready = partial(job.ready, program, superinstructions, accounting, registers, self.max_trace)
        loop.form_code = ffi.cast("int64_t *", self._ready())
        if self.log is None:
            self.log, self.links = ffi.new("LoggedCompile[]", LOG), ffi.new("LoggedLink[]", LOG)
            self.exit_at, self.exit_rw = ffi.new("uint64_t[]", MAX_EXITS), ffi.new("uint64_t[]", MAX_EXITS)
            loop.log, loop.log_cap, loop.links, loop.links_cap = self.log, LOG, self.links, LOG
            loop.never = NEVER
            loop.exit_at, loop.exit_rw, loop.pending_exit = self.exit_at, self.exit_rw, -1
            loop.run, loop.rec, loop.heads = run, self.rec, self.heads
        loop.job = job.job
        return True

    def compile_paths(self, paths: Sequence[tuple[Program, Handover]]) -> Callable[[], int]:
        """A call that compiles these recorded paths in C, one after another,
        each as the loop between the tiers compiles one (compile_in_loop set
        it up), with nothing around them: jit.tools.benchmark times it.  It
        returns how many it made, which take_compiles then gives.  They are
        compiled once first, to make the room they need."""
        rt = self.backend
        assert isinstance(rt, NativeRuntime) and self.log is not None, "compile_paths without compile_in_loop"
        job = rt.one_call_compiler()
        assert job is not None
        rows, kept = array("q"), []
        for program, handover in paths:
            args, made, path = job.arguments(program, handover)
            rows.extend((*args, *made))
            kept.append(path)
        if len(paths) > len(self.log):  # (the log holds every compile of the call)
            self.log = self.vm.ffi.new("LoggedCompile[]", len(paths))
            self.loop.log, self.loop.log_cap = self.log, len(paths)
        pointer = self.vm.ffi.from_buffer("int64_t[]", rows)
        self._paths = rows, pointer, kept  # (alive while the call may be made)
        call = partial(self.lib.jit_compile_paths, self.loop, pointer, len(paths))
        arena = rt.arena
        while (made := call()) < len(paths):  # (once, untimed: the room these compiles need made)
            self.free_code()
            run = arena.code_run()
            if run.status == self.lib.JIT_COMPILE_RUN:  # (a run that holds them all, the next time round)
                room = arena.refill(run.need + 2 * run.size)
            else:
                room = job.recover(run, arena, paths[made][0])
            if not room:
                raise JitError("no dual-mapped run for the compiles in C")
        self.free_code()
        return call

    def take_compiles(self) -> list[tuple[TraceShape, CompiledCode, bool]]:
        """The compiles the loop in C made since last asked (each one's code
        freed with the machine), and whether each is a side trace."""
        loop, rt = self.loop, self.backend
        assert isinstance(rt, NativeRuntime), "compiles in C without compile_in_loop"
        made: list[tuple[TraceShape, CompiledCode, bool]] = []
        for k in range(loop.nlog):
            entry = self.log[k]
            shape, code = rt.adopt_record(entry.record, entry.start, entry.ops)
            self.compiled.append(code)
            made.append((shape, code, bool(entry.side)))
        loop.nlog = 0
        return made

    def take_links(self) -> list[tuple[int, int, int, bool]]:
        """The exits the loop in C linked since last asked: each one's id,
        destination, times taken before, and whether the jump was written
        (else it did not reach, and a trampoline must be)."""
        loop = self.loop
        links = [(e.exit_id, e.destination, e.before, bool(e.patched)) for e in self.links[0 : loop.nlinks]]
        loop.nlinks = 0
        return links

    def enter(self, address: int) -> int:
        return self.rt.enter(self.state, address)

    def run_tiers(self, pc: int) -> int:
        """Tier 1 from `pc`, and the traces it reaches, until the controller
        must act (stencils/tiers.c): the status that says why."""
        if self._ready is not None:
            self._ready()  # (the compiler is shared: another run may have set it up otherwise since)
        return self.lib.jit_run_tiers(self.state, self.code, pc, self.loop)

    def trace_loop(self, header: int) -> int:
        """Have the loop in C trace the hot loop at `header` (compile_in_loop
        set it up): VM_RUNNING when it went on to the trace, else what
        run_tiers would have returned."""
        return self.lib.jit_trace_loop(self.state, self.code, header, self.loop)

    def settle(self, exit_id: int) -> None:
        """An exit the loop in C need not report again (linked, or never to be)."""
        self.settled[exit_id] = 1

    def link(self, code: CompiledCode, step: int, destination: int) -> None:
        self.backend.link(code, step, destination)

    def mark_head(self, pc: int, code: CompiledCode) -> None:
        self.heads[pc] = 1
        self.counters[pc] = 0  # tier 1 hands over at every back-edge from now on
        self.trace_at[pc] = self.vm.ffi.cast("void *", code.address(0))

    def never(self, pc: int) -> None:
        self.counters[pc] = NEVER

    def never_call(self, pc: int) -> None:
        self.call_counters[pc] = NEVER

    def exit_count(self, exit_id: int) -> int:
        return self.exit_counts[exit_id]

    def outcome(self) -> Outcome:
        return self.vm.outcome()

    def free_code(self) -> None:
        """Free every compile made so far (those the loop in C has not handed over too)."""
        if self.loop.nlog:
            self.take_compiles()
        for compiled in self.compiled:
            compiled.free()
        self.compiled.clear()

    def close(self) -> None:
        self.free_code()
        self.vm.close()
