"""The tiered engine: tier 1 finds hot loops and functions, which then run natively.

Tier 1 (the C interpreter in stencils/interp_tier1.c) counts back-edges per loop
header and stops when one runs out.  The controller here then records the
path the loop takes (tier 1 executes it, writing down the IR positions),
forms a trace (jit.codegen.trace), compiles it with copy-and-patch and enters it.
A trace leaves through a side exit when a guard fails; tier 1 resumes at
the exit's IR position.  Each exit counts how often it is taken; a hot one
gets a trace of its own, recorded from where it resumes, and the exit is
re-patched to jump straight into it (trace linking).  Traces end by looping
to their own start, by jumping into another trace, or by an exit.

Calls are inlined: a trace follows a CALL into its callee, keeping the real
frame push and pop, so recursion and deep call chains are traced as far as
the maximum trace length allows.  A loop header that cannot be traced is
not tried again.

Tier 1 also counts calls, apart from back-edges.  A function called often
enough from tier 1 is compiled whole (jit.codegen.trace.form_function) and every
later call from tier 1 enters it; that is what recursion needs, since it
has no loop to trace.  Its calls of other functions leave through exits
that, once hot, are linked to the callee's own compiled code.

On the native machine the loop between the tiers runs in C (stencils/tiers.c):
it enters traces at their headers and counts exits; once the compiler is set
up it also records, compiles and installs loop traces, and links hot exits
(to side traces it compiles), logging what it made for the controller to
take charge of; it comes back here only for what needs a decision.
execute()'s own loop, which makes the same decisions, drives the emulated
machine (and the native one with TierConfig(c_tiering=False)).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..codegen.passes import DEFAULT_PASSES, formed_in_c
from ..codegen.trace import EXIT, FUNCTION, LINK, LOOP, ExitInfo, Handover, TraceShape
from ..errors import JitError
from ..lang.ir import Program
from ..lang.outcome import Outcome, Prepared
from ..limits import MAX_EXITS
from ..targets import host_target
from ..vmdef import (
    VM_ERROR,
    VM_EXIT_HOT,
    VM_EXITED,
    VM_HALTED,
    VM_HOT,
    VM_HOT_CALL,
    VM_HOT_RECORDED,
    VM_RECORDED,
    VM_RUNNING,
)
from .config import TierConfig, TierStats
from .interfaces import Backend, CompiledCode, TierMachine
from .machines import NativeMachine
from .native import Compiled

if TYPE_CHECKING:
    from .observers import Observer


@dataclass
class _Exit:
    exit_id: int
    code: CompiledCode
    info: ExitInfo
    linked: bool = False
    failed: bool = False
    taken_before_link: int = 0  # times it was taken (back to tier 1) before it was linked
    destination: int | None = None  # the code it was linked to


class TieredRun:
    """One run of one program on the tiered engine, on a machine (jit.runtime.machines)."""

    def __init__(
        self,
        program: Program,
        args: Sequence[int],
        config: TierConfig | None = None,
        target: str | None = None,
        emulate: bool = False,
        on_compile: Callable[[CompiledCode, TraceShape, bool], None] | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.program, self.config = program, config or TierConfig()
        self.on_compile = on_compile
        self.stats = TierStats()
        host = host_target()
        target = target or host
        if target is None:
            raise JitError("this machine has no native target: choose one with --target")
        c = self.config
        # (before the machine maps anything: opening a profiler's file may fail)
        self.observers: list[Observer] = []
        if c.observed:
            from .observers import observers_for  # (imported by the runs that tell a profiler or debugger)

            self.observers = observers_for(c, target)
        # The passes every compile runs: those chosen, or the backend's.
        self.passes = c.passes if c.passes is not None else (backend.default_passes if backend else DEFAULT_PASSES)
        self._native: NativeMachine | None = None  # the machine, when the loop between the tiers runs in C
        if target == host and not emulate:
            self.machine: TierMachine = NativeMachine(
                program, args, c.hot_loop, c.hot_call, c.max_trace, backend, c.hot_exit, c.accounting
            )
            if c.c_tiering:
                self._native = self.machine
        elif backend is not None:
            raise JitError("the LLVM backends run natively only, not under emulation")
        else:
            from .emulate import EmulatedMachine

            self.machine = EmulatedMachine(program, args, target, c.hot_loop, c.hot_call)
        self.traces: dict[int, CompiledCode] = {}  # root traces by loop header
        self.functions: dict[int, CompiledCode] = {}  # hot functions' code by their first instruction
        self.exits: dict[int, _Exit] = {}  # the exits looked at so far (made on first use)
        self._exit_firsts: list[int] = []  # each compile's first exit id, in order ...
        self._exit_owners: list[tuple[CompiledCode, TraceShape]] = []  # ... its code and shape
        # exit id -> times it came back to tier 1 (counted here, without accounting; so does stencils/tiers.c)
        self._returns: MutableSequence[int] | defaultdict[int, int] = (
            self.machine.returns if isinstance(self.machine, NativeMachine) else defaultdict(int)
        )
        self._returned = 0  # returns to tier 1 seen here (every exit id, and -1)
        self.next_exit = 0
        self._prepared = False  # the compiler set up (_prepare)
        # Whether the loop in C may trace hot loops and link hot exits itself,
        # once the compiler is set up (TierConfig.c_compiles): not with passes
        # form.c does not run, or with anyone to tell of each compile as it is made.
        self._c_compiles = (
            self._native is not None and c.c_compiles and c.c_forming and formed_in_c(self.passes)
            and not self.observers and on_compile is None
        )  # fmt: skip

    # -- the loop between the tiers ------------------------------------------

    def run(self) -> Outcome:
        """Run the program once, then free everything."""
        try:
            self.execute()
            return self.machine.outcome()
        finally:
            self.close()

    def execute(self) -> None:
        """The tiers, until the program halts or fails."""
        if self._native is not None:
            self._execute_in_c(self._native)
            return
        m = self.machine
        pc = 0
        while True:
            status = m.interpret(pc)
            if status == VM_HOT:
                if m.pc not in self.traces:
                    self._trace_loop(m.pc)  # (recording moves the pc on)
            elif status == VM_HOT_CALL:
                self._hot_call(m.pc)
            else:
                break
            resume = self._run_traces(self.traces.get(m.pc))
            if resume is None:
                break
            pc = resume

    def _execute_in_c(self, m: NativeMachine) -> None:
        """The same decisions as execute()'s loop, with the loop itself in
        C: Python hears only of what it must act on."""
        pc = 0
        while True:
            loop = m.loop
            loop.next_exit = self.next_exit
            status = m.run_tiers(pc)
            if loop.nlog or loop.nlinks:
                self._take_from_loop(m)
            if status == VM_HOT and self._c_compiles and not self._prepared and m.pc not in self.traces:
                self._prepare()  # (the first hot header: the loop in C is set up to compile, then traces it)
                if self._c_compiles:
                    status = m.trace_loop(m.pc)
                    if loop.nlog:
                        self._take_from_loop(m)
            if status == VM_RUNNING:
                pass  # (the loop in C traced the header)
            elif status == VM_HOT:  # (a header with no trace that tiers.c did not trace)
                if m.pc not in self.traces:
                    self._trace_loop(m.pc)  # (recording moves the pc on)
            elif status == VM_HOT_RECORDED:  # (recorded by tiers.c, whose compile needs the controller)
                if loop.pending_exit < 0:
                    self._trace_loop(loop.rec.start, m.recorded())
                else:
                    self._exit_taken(loop.pending_exit, loop.rec.start, m.recorded())
            elif status == VM_HOT_CALL:
                self._hot_call(m.pc)
            elif status == VM_EXIT_HOT:
                self._exit_taken(m.exit_index)
            else:
                return
            if m.status in (VM_HALTED, VM_ERROR):
                return
            pc = m.pc

    def _take_from_loop(self, m: NativeMachine) -> None:
        """Take charge of the traces the loop in C compiled (in the order it
        gave them their exits; taking them counts as compile time), then of
        the exits it linked."""
        t0 = time.perf_counter()
        for shape, code, side in m.take_compiles():
            self._install(shape, code, "side" if side else "loop")
            self.stats.traces += 1
            self.stats.side_traces += side
            self.stats.loop_compiles += 1
            self.stats.loop_compile_ops += shape.ops
            if not side:
                self.traces[shape.start_pc] = code
        self.stats.compile_seconds += time.perf_counter() - t0
        assert self.next_exit == m.loop.next_exit, "the loop in C and the controller numbered exits apart"
        for exit_id, destination, before, patched in m.take_links():
            ex = self._exit(exit_id)
            assert ex is not None, "the loop in C linked an exit no code owns"
            if not patched:  # (the direct jump does not reach: written here, through a trampoline)
                self.machine.link(ex.code, ex.info.step, destination)
            ex.taken_before_link, ex.linked, ex.destination = before, True, destination
            self.stats.linked += 1

    def _hot_call(self, start: int) -> None:
        """Tier 1 called a hot function: run it compiled (compiled now, if need be)."""
        function = self.functions.get(start) or self._compile_function(start)
        if function is not None:
            self.stats.calls += 1
            self._enter(function)

    def close(self) -> None:
        """Take the last counts, then free the code and the VM."""
        m = self.machine
        self.stats.interp_ops = m.interp_ops
        if self.config.accounting:
            self.stats.trace_ops = m.trace_ops
            for exit_id in range(self.next_exit):
                taken, ex = m.exit_count(exit_id), self.exits.get(exit_id)
                before = ex.taken_before_link if ex is not None and ex.linked else taken
                self.stats.exits_to_tier1 += before
                self.stats.exits_linked += taken - before
        else:
            self.stats.accounted = False
            self.stats.exits_to_tier1 = self._returned
        if self._native is not None:  # (what the loop in C counted and timed)
            loop = self._native.loop
            self.stats.entries += loop.entries
            self.stats.hot_loops += loop.hot_loops
            self.stats.record_seconds += loop.record_ns / 1e9
            self.stats.compile_seconds += loop.compile_ns / 1e9
            self.stats.loop_compile_seconds = loop.compile_ns / 1e9
            if not self.config.accounting:
                self.stats.exits_to_tier1 += self._native.loop.exits
        for observer in self.observers:
            observer.close()  # (before the code they describe is freed)
        self.observers = []
        m.close()

    def _run_traces(self, code) -> int | None:
        """Run `code`, then traces while the state sits at a trace head; then
        the pc for tier 1, or None once the program has ended."""
        m = self.machine
        while True:
            if m.status in (VM_HALTED, VM_ERROR):
                return None
            if code is None:
                return m.pc
            self.stats.entries += 1
            self._enter(code)
            code = self.traces.get(m.pc)

    def _enter(self, code) -> None:
        """Run compiled code from its first step until it returns."""
        if self.machine.enter(code.address(0)) == VM_EXITED:
            exit_id = self.machine.exit_index
            self._returned += 1
            if not self.config.accounting and 0 <= exit_id < MAX_EXITS:
                self._returns[exit_id] += 1
            self._exit_taken(exit_id)

    def exit_count(self, exit_id: int) -> int:
        """Times an exit was taken: every pass, counted by the code, with
        accounting; else the times it came back to the engine (not through a link)."""
        return self.machine.exit_count(exit_id) if self.config.accounting else self._returns[exit_id]

    # -- making traces ---------------------------------------------------------

    def _trace_loop(self, header: int, recorded: Sequence[int] | None = None) -> None:
        """Trace the hot loop at `header` (`recorded`: its path, when the
        loop in C recorded it and counted it)."""
        self.stats.hot_loops += recorded is None
        code = self._record_and_compile(header, recorded=recorded)
        if code is None:
            self.machine.never(header)
            return
        self.traces[header] = code
        self.machine.mark_head(header, code)

    def _prepare(self) -> None:
        """Set the compiler up before the first compile, timed apart: a
        process's first compile would otherwise count its imports and
        patch plans as compile time."""
        if not self._prepared:
            t0 = time.perf_counter()
            self.machine.prepare_compiles(self.program)
            if self._c_compiles:  # (from now on the loop in C traces and links, with the compiler set up)
                assert self._native is not None
                c = self.config
                self._c_compiles = self._native.compile_in_loop(
                    self.program, c.superinstructions, c.accounting, bool(self.passes)
                )
            self.stats.setup_seconds += time.perf_counter() - t0
            self._prepared = True

    def _compile_function(self, start: int):
        """Compile the hot function starting at `start` whole.  Its start is
        not marked as a trace head, so loop traces still inline calls of it."""
        m = self.machine
        c = self.config
        handover = Handover(
            FUNCTION, (), start, self.next_exit, None, c.superinstructions, self.passes, c.c_forming, c.accounting
        )
        shape, code = self._compile(handover)
        if self.next_exit + len(shape.exits) > MAX_EXITS:  # (its code is freed with the machine's)
            m.never_call(start)
            return None
        self._install(shape, code, "function")
        self.stats.functions += 1
        self.functions[start] = code
        return code

    def _exit(self, exit_id: int) -> _Exit | None:
        """The record of an exit (made the first time it is looked at: most never are)."""
        ex = self.exits.get(exit_id)
        if ex is None:
            k = bisect_right(self._exit_firsts, exit_id) - 1
            if k < 0:
                return None
            code, shape = self._exit_owners[k]
            info = shape.exits.get(exit_id)
            if info is None:
                return None
            ex = self.exits[exit_id] = _Exit(exit_id, code, info)
        return ex

    def _exit_taken(self, exit_id: int, resume: int | None = None, recorded: Sequence[int] | None = None) -> None:
        """Exit `exit_id` came back to tier 1, which resumes at `resume`
        (the machine's pc unless given); `recorded`: the path the loop in C
        recorded from there, when its compile came back here."""
        ex = self._exit(exit_id)
        if ex is None:
            if 0 <= exit_id < MAX_EXITS:
                self.machine.settle(exit_id)  # (no code of ours owns it: nothing to do, ever)
            return
        if ex.linked or ex.failed or self.exit_count(exit_id) < self.config.hot_exit:
            return
        if resume is None:
            resume = self.machine.pc
        if ex.info.call:  # a call out of a compiled function: to the callee's code, whole
            callee = self.functions.get(resume) or self._compile_function(resume)
            if callee is None:
                self._fail(ex)
            else:
                self._link(ex, callee.address(0))
            return
        if resume in self.traces:
            self._link(ex, self.traces[resume].address(0))
            return
        side = self._record_and_compile(resume, side=True, recorded=recorded)
        if side is None:
            self._fail(ex)
            return
        self._link(ex, side.address(0))

    def _fail(self, ex: _Exit) -> None:
        """An exit that gets no code: it goes on coming back to tier 1."""
        ex.failed = True
        self.machine.settle(ex.exit_id)

    def _record_and_compile(self, start: int, side: bool = False, recorded: Sequence[int] | None = None):
        """Record from `start` (tier 1 executes the path; unless `recorded`
        is the path, recorded already) and compile it."""
        m = self.machine
        pcs = recorded
        if pcs is None:
            t0 = time.perf_counter()
            pcs = m.record(start, self.config.max_trace)
            self.stats.record_seconds += time.perf_counter() - t0
        if m.status != VM_RECORDED or not pcs:
            return None
        stop = m.pc
        kind = LOOP if stop == start else LINK if stop in self.traces else EXIT
        if self.next_exit + len(pcs) + 2 > MAX_EXITS:
            return None
        link = self.traces[stop].address(0) if kind == LINK else None
        c = self.config
        shape, code = self._compile(
            Handover(kind, pcs, stop, self.next_exit, link, c.superinstructions, self.passes, c.c_forming, c.accounting)
        )
        self._install(shape, code, "side" if side else "loop")
        self.stats.traces += 1
        self.stats.side_traces += side
        return code

    def _compile(self, handover: Handover) -> tuple[TraceShape, CompiledCode]:
        """Compile, timed (the compiler set up first, timed apart)."""
        self._prepare()
        t0 = time.perf_counter()
        shape, code = self.machine.compile_handover(self.program, handover)
        self.stats.compile_seconds += time.perf_counter() - t0
        shape.handover = handover
        return shape, code

    def _install(self, shape: TraceShape, code: CompiledCode, kind: str) -> None:
        """Take charge of a compile's exits, count it, and tell the observers."""
        steps, exits = shape.counts()
        if exits:
            self._exit_firsts.append(self.next_exit)
            self._exit_owners.append((code, shape))
        self.next_exit += exits
        self.stats.uops_compiled += steps
        if self.observers:
            from .codeinfo import describe

            assert isinstance(code, Compiled), "observers need native copy-and-patch code (checked by jit.api)"
            described = describe(code, self.program, shape.start_pc, kind)
            for observer in self.observers:
                observer.add(described)
        if self.on_compile:
            self.on_compile(code, shape, kind == "side")

    def _link(self, ex: _Exit, destination: int) -> None:
        """Re-patch an exit to jump straight to `destination` (W^X throughout)."""
        ex.taken_before_link = self.exit_count(ex.exit_id)
        self.machine.link(ex.code, ex.info.step, destination)
        ex.linked, ex.destination = True, destination
        self.machine.settle(ex.exit_id)
        self.stats.linked += 1


def prepare_tiered(
    program: Program,
    args: Sequence[int],
    config: TierConfig | None = None,
    on_compile=None,
    target: str | None = None,
    emulate: bool = False,
    backend: Backend | None = None,
):
    """Set up a tiered run (natively, or emulated for another target); the
    returned object runs it once when called and keeps its stats."""
    run = TieredRun(program, args, config, target, emulate, on_compile, backend)
    return Prepared(run.execute, run.machine.outcome, run.close, run.stats)
