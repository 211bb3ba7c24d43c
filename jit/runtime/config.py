"""The tiered engine's settings and the statistics runs report (light: no C, no LLVM).

Kept apart from jit.runtime.tiering so that the public API and the command
line can name them without loading the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codegen.passes import check

# TierConfig's flags that tell profilers and debuggers about code (and the
# command line's --perf-map, --perf-jitdump, --gdb).
OBSERVER_FLAGS = ("perf_map", "perf_jitdump", "gdb")


@dataclass
class TierConfig:
    """When the tiered engine compiles, and what it writes for profilers."""

    hot_loop: int = 50  # back-edges before a loop header is traced
    # Calls before a function is compiled whole.  Far more than hot_loop: a
    # function called from a loop is better inlined into the loop's trace, so
    # it should not win the race to be compiled; recursion gets there anyway.
    # (Measured on the bundled programs, tiered: 50 gave 1.07x over never,
    # 200 1.09x, 1000 1.13x; nbody loses at 50, fib gains at all three.)
    hot_call: int = 1000
    hot_exit: int = 10  # times a side exit is taken before it gets its own trace
    max_trace: int = 1000  # micro-ops recorded at most per trace
    # What profilers and debuggers are told about compiled code (native
    # copy-and-patch only: jit.runtime.observers).
    perf_map: bool = False  # write /tmp/perf-PID.map for perf report
    perf_jitdump: bool = False  # write /tmp/jit-PID.dump (code and .uop lines) for perf inject --jit
    gdb: bool = False  # register each piece of code with GDB's JIT interface
    superinstructions: bool = True  # fuse common runs of steps (jit.codegen.fuse)
    c_forming: bool = True  # form recorded paths in C (jit.codegen.cform); off: the Python reference
    # The loop between the tiers in C (stencils/tiers.c), natively; off: the
    # controller's Python loop (the emulated machine's always).
    c_tiering: bool = True
    # With the loop in C, it also traces hot loops and links hot exits itself
    # (recording and compiling with copy-and-patch's one-call compile, into the
    # open run) and logs what it made for the controller; off, or with passes,
    # observers or an on_compile callback, the controller does each of them.
    c_compiles: bool = True
    # Compiled code counts the micro-ops it runs and every pass through an exit,
    # linked or not (what --stats reports); off, it counts nothing and the engine
    # counts the exits that come back to it (jit.codegen.trace's docstring).
    accounting: bool = False
    # Trace-level passes run on every trace and function, in order
    # (jit.codegen.passes); None: the backend's (Backend.default_passes).
    passes: tuple[str, ...] | None = None

    @property
    def observed(self) -> bool:
        """Whether anything outside the run is told about its code."""
        return any(getattr(self, flag) for flag in OBSERVER_FLAGS)

    def __post_init__(self) -> None:
        if self.passes is not None:
            self.passes = tuple(self.passes)
            check(self.passes)
        for name in ("hot_loop", "hot_call", "hot_exit", "max_trace"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer of at least 1, not {value!r}")


@dataclass
class TierStats:
    """What one tiered run did."""

    hot_loops: int = 0
    functions: int = 0  # hot functions compiled whole
    traces: int = 0
    side_traces: int = 0
    linked: int = 0  # exits re-patched to jump into other compiled code
    uops_compiled: int = 0
    compile_seconds: float = 0.0
    # Of those compiles, the ones the loop between the tiers made itself
    # (TierConfig.c_compiles): how many, the IR micro-ops their paths cover,
    # and the time compiling took there (with any attempt handed back to the
    # controller; part of compile_seconds, which also has the controller
    # taking charge of them).
    loop_compiles: int = 0
    loop_compile_ops: int = 0
    loop_compile_seconds: float = 0.0
    setup_seconds: float = 0.0  # setting the compiler up before the first compile (imports, patch plans)
    record_seconds: float = 0.0
    exits_to_tier1: int = 0  # side exits taken that returned to tier 1
    exits_linked: int = 0  # side exits taken after linking: straight into other compiled code
    entries: int = 0  # times tier 1 handed over to a trace
    calls: int = 0  # times tier 1 called a compiled function
    trace_ops: int = 0
    interp_ops: int = 0
    accounted: bool = True  # whether compiled code counted (TierConfig.accounting): else trace_ops and
    # exits_linked are not known

    @property
    def side_exits(self) -> int:
        return self.exits_to_tier1 + self.exits_linked

    @property
    def trace_share(self) -> float:
        total = self.trace_ops + self.interp_ops
        return self.trace_ops / total if total else 0.0

    def report(self) -> str:
        total = self.trace_ops + self.interp_ops
        linked = f", through linked exits straight into other compiled code {self.exits_linked}"
        share = (
            f"micro-ops run in compiled code {self.trace_share:.1%} ({self.trace_ops} of {total}), "
            f"in tier 1 {1 - self.trace_share if total else 0:.1%} ({self.interp_ops})"
        )
        if not self.accounted:
            linked = ""
            share = (
                f"micro-ops run in tier 1 {self.interp_ops}; compiled code counted nothing "
                "(TierConfig(accounting=True) counts its micro-ops and linked exits)"
            )
        in_loop = ""
        if self.loop_compiles:
            rate = self.loop_compile_ops / self.loop_compile_seconds / 1e6 if self.loop_compile_seconds else 0.0
            in_loop = (
                f"; {self.loop_compiles} of the compiles made by the loop between the tiers in C, "
                f"{self.loop_compile_seconds * 1e6:.0f} us for {self.loop_compile_ops} micro-ops "
                f"({rate:.1f} M a second)"
            )
        return (
            f"jit: hot loops {self.hot_loops}, traces compiled {self.traces} ({self.side_traces} side), "
            f"hot functions compiled {self.functions}, exits linked {self.linked}, "
            f"micro-ops compiled {self.uops_compiled}\n"
            f"jit: compile time {self.compile_seconds * 1e3:.2f} ms (and {self.setup_seconds * 1e3:.2f} ms setting the "
            f"compiler up first), recording {self.record_seconds * 1e3:.2f} ms{in_loop}\n"
            f"jit: side exits back to tier 1 {self.exits_to_tier1}{linked}; trace entries from tier 1 {self.entries}, "
            f"calls of compiled functions from tier 1 {self.calls}\n"
            f"jit: {share}\n"
        )


@dataclass
class EagerStats:
    """What compiling a whole program up front (eager) did."""

    instructions: int  # the program's IR instructions
    steps: int  # the steps compiled (after superinstructions)
    compile_seconds: float  # forming the steps and compiling them

    def report(self) -> str:
        return (
            f"jit: compiled the whole program up front: {self.instructions} instructions as {self.steps} steps "
            f"in {self.compile_seconds * 1e3:.2f} ms\n"
        )
