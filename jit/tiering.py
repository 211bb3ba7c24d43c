"""The tiered engine: tier 1 finds hot loops, traces run them natively.

Tier 1 (the C interpreter in jit/interp_tier1.c) counts back-edges per loop
header and stops when one runs out.  The controller here then records the
path the loop takes (tier 1 executes it, writing down the IR positions),
forms a trace (jit.trace), compiles it with copy-and-patch and enters it.
A trace leaves through a side exit when a guard fails; tier 1 resumes at
the exit's IR position.  Each exit counts how often it is taken; a hot one
gets a trace of its own, recorded from where it resumes, and the exit is
re-patched to jump straight into it (trace linking).  Traces end by looping
to their own start, by jumping into another trace, or by an exit.

Calls are inlined: a trace follows a CALL into its callee, keeping the real
frame push and pop, so recursion and deep call chains are traced as far as
the maximum trace length allows.  A loop header that cannot be traced is
not tried again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .cinterp import VM_ERROR, VM_HALTED, NativeVM, encode
from .ir import Program
from .native import Compiled, NativeRuntime, native_runtime
from .outcome import Outcome
from .patch import jump
from .trace import LINK, LOOP, ExitInfo, TraceShape, form_trace

VM_EXITED, VM_HOT, VM_RECORDED = 3, 4, 5
MAX_EXITS = 1 << 16
NEVER = 1 << 62  # a counter that never runs out: the loop is not traced again


@dataclass
class TierConfig:
    hot_loop: int = 50  # back-edges before a loop header is traced
    hot_exit: int = 10  # times a side exit is taken before it gets its own trace
    max_trace: int = 1000  # micro-ops recorded at most per trace
    perf_map: bool = False  # write /tmp/perf-PID.map for perf report

    def __post_init__(self) -> None:
        for name in ("hot_loop", "hot_exit", "max_trace"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass
class TierStats:
    hot_loops: int = 0
    traces: int = 0
    side_traces: int = 0
    linked: int = 0
    uops_compiled: int = 0
    compile_seconds: float = 0.0
    record_seconds: float = 0.0
    side_exits: int = 0
    trace_ops: int = 0
    interp_ops: int = 0

    @property
    def trace_share(self) -> float:
        total = self.trace_ops + self.interp_ops
        return self.trace_ops / total if total else 0.0

    def report(self) -> str:
        total = self.trace_ops + self.interp_ops
        return (
            f"jit: hot loops {self.hot_loops}, traces compiled {self.traces} ({self.side_traces} side), "
            f"exits linked {self.linked}, micro-ops compiled {self.uops_compiled}\n"
            f"jit: compile time {self.compile_seconds * 1e3:.2f} ms, recording {self.record_seconds * 1e3:.2f} ms, "
            f"side exits taken {self.side_exits}\n"
            f"jit: micro-ops run in traces {self.trace_share:.1%} ({self.trace_ops} of {total}), "
            f"in tier 1 {1 - self.trace_share if total else 0:.1%} ({self.interp_ops})\n"
        )


@dataclass
class _Exit:
    compiled: Compiled
    info: ExitInfo
    linked: bool = False
    failed: bool = False


@dataclass
class TieredRun:
    """One run of one program on the tiered engine, natively."""

    program: Program
    args: Sequence[int]
    config: TierConfig = field(default_factory=TierConfig)
    rt: NativeRuntime = field(default_factory=native_runtime)
    stats: TierStats = field(default_factory=TierStats)
    on_compile: Callable[[Compiled, TraceShape, bool], None] | None = None  # --dump-traces

    def __post_init__(self) -> None:
        n = len(self.program.code)
        self.vm = NativeVM.create(self.program, self.args)
        ffi = self.vm.ffi
        self.ffi, self.lib = ffi, self.vm.lib
        self.code = encode(self.program, ffi)
        self.counters = ffi.new("int64_t[]", [self.config.hot_loop] * n)
        self.exit_counts = ffi.new("int64_t[]", MAX_EXITS)
        self.heads = ffi.new("int8_t[]", n)
        self.pcs = ffi.new("int64_t[]", self.config.max_trace)
        self.rec = ffi.new("Recorder *")
        self.rec.pcs, self.rec.heads, self.rec.max = self.pcs, self.heads, self.config.max_trace
        self.vm.state.counters, self.vm.state.exit_counts = self.counters, self.exit_counts
        self.traces: dict[int, Compiled] = {}  # root traces by loop header
        self.compiled: list[Compiled] = []
        self.exits: dict[int, _Exit] = {}
        self.next_exit = 0

    # -- the loop between the tiers ------------------------------------------

    def run(self) -> Outcome:
        state = self.vm.state
        pc = 0
        try:
            while True:
                self.lib.run_tier1(state, self.code, pc)
                if state.status != VM_HOT:
                    break
                if state.pc not in self.traces:
                    self._trace_loop(state.pc)
                resume = self._run_traces()
                if resume is None:
                    break
                pc = resume
            return self.vm.outcome()
        finally:
            self.stats.trace_ops, self.stats.interp_ops = state.trace_ops, state.interp_ops
            self.stats.side_exits = sum(self.exit_counts[0 : self.next_exit])
            self.close()

    def _run_traces(self) -> int | None:
        """Run traces while the state sits at a trace head; then the pc for
        tier 1, or None once the program has ended."""
        state = self.vm.state
        while True:
            if state.status in (VM_HALTED, VM_ERROR):
                return None
            trace = self.traces.get(state.pc)
            if trace is None:
                return state.pc
            self.rt.enter(state, trace.address(0))
            if state.status == VM_EXITED:
                self._exit_taken(state.exit_index)

    # -- making traces ---------------------------------------------------------

    def _trace_loop(self, header: int) -> None:
        self.stats.hot_loops += 1
        compiled = self._record_and_compile(header)
        if compiled is None:
            self.counters[header] = NEVER
            return
        self.traces[header] = compiled
        self.heads[header] = 1
        self.counters[header] = 0  # from now on tier 1 hands over at every back-edge

    def _exit_taken(self, exit_id: int) -> None:
        ex = self.exits.get(exit_id)
        if ex is None or ex.linked or ex.failed or self.exit_counts[exit_id] < self.config.hot_exit:
            return
        resume = self.vm.state.pc
        if resume in self.traces:
            self._link(ex, self.traces[resume].address(0))
            return
        side = self._record_and_compile(resume, side=True)
        if side is None:
            ex.failed = True
            return
        self._link(ex, side.address(0))

    def _record_and_compile(self, start: int, side: bool = False) -> Compiled | None:
        """Record from `start` (tier 1 executes the path) and compile it."""
        state, rec = self.vm.state, self.rec
        rec.len, rec.start, rec.depth = 0, start, 0
        t0 = time.perf_counter()
        self.lib.run_record(state, self.code, start, rec)
        self.stats.record_seconds += time.perf_counter() - t0
        if state.status != VM_RECORDED or rec.len == 0:
            return None
        pcs = [self.pcs[k] for k in range(rec.len)]
        stop = state.pc
        kind = LOOP if stop == start else LINK if stop in self.traces else "exit"
        if self.next_exit + len(pcs) + 2 > MAX_EXITS:
            return None
        link = self.traces[stop].address(0) if kind == LINK else None
        t0 = time.perf_counter()
        shape = form_trace(self.program, pcs, stop, kind, self.next_exit, link)
        compiled = self.rt.compile(shape.steps)
        self.stats.compile_seconds += time.perf_counter() - t0
        self.compiled.append(compiled)
        for exit_id, info in shape.exits.items():
            self.exits[exit_id] = _Exit(compiled, info)
        self.next_exit += len(shape.exits)
        self.stats.traces += 1
        self.stats.side_traces += side
        self.stats.uops_compiled += len(shape.steps)
        if self.config.perf_map:
            self._perf_map(compiled, start, side)
        if self.on_compile:
            self.on_compile(compiled, shape, side)
        return compiled

    def _link(self, ex: _Exit, destination: int) -> None:
        """Re-patch an exit to jump straight to `destination` (W^X throughout)."""
        region = ex.compiled.region
        at = ex.compiled.address(ex.info.step)
        code = jump(self.rt.library.target, at, destination)
        with region.unsealed():
            region.write(at - region.address, code)
        ex.linked = True
        self.stats.linked += 1

    def _perf_map(self, compiled: Compiled, start: int, side: bool) -> None:
        line = self.program.code[start].line
        name = f"jit:{os.path.basename(self.program.filename)}:{line}:{'side' if side else 'loop'}"
        with open(f"/tmp/perf-{os.getpid()}.map", "a") as f:
            f.write(f"{compiled.region.address:x} {compiled.layout.size:x} {name}\n")

    def close(self) -> None:
        for compiled in self.compiled:
            compiled.free()
        self.compiled.clear()
        self.traces.clear()
        self.vm.close()


def prepare_tiered(program: Program, args: Sequence[int], config: TierConfig | None = None, on_compile=None):
    """Set up a tiered run; the returned object runs it once when called."""
    run = TieredRun(program, args, config or TierConfig(), on_compile=on_compile)
    return _Runner(run)


@dataclass
class _Runner:
    run_: TieredRun

    @property
    def stats(self) -> TierStats:
        return self.run_.stats

    def __call__(self) -> Outcome:
        return self.run_.run()
