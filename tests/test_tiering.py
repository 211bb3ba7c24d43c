"""The tiered engine: hot loops become traces, guards exit, hot exits get linked."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import pytest

from jit.lang.uop import parse, parse_file
from jit.paths import ROOT
from jit.runtime import memory
from jit.runtime.engines import ENGINES
from jit.runtime.tiering import TierConfig, TieredRun, TierStats, prepare_tiered

from .runners import agree

PROGRAMS = ROOT / "bench" / "programs"

# The loop takes one side of a branch for the first half of the run and the
# other side after that: the trace's guard starts failing halfway, the exit
# gets hot, and a side trace is linked to it.
PHASES = """
.args 1
.func main locals=3
    arg 0
    store 0
loop:
    load 1
    load 0
    lt
    jz done
    load 1
    load 0
    push_int 2
    div
    lt
    jz second
    load 2
    push_int 3
    add
    store 2
    jump next
second:
    load 2
    push_int 5
    xor
    store 2
next:
    load 1
    push_int 1
    add
    store 1
    jump loop
done:
    load 2
    print_int
    halt
"""


def tiered(program, args, **config):
    runner = prepare_tiered(program, args, TierConfig(**config))
    return runner(), runner.stats


def test_phase_change_side_exits_then_links_a_side_trace():
    program = parse(PHASES, "phases.uop")
    outcome, stats = tiered(program, [10_000], hot_loop=10, hot_exit=5, accounting=True)
    assert outcome == ENGINES["py"](program, [10_000])
    assert stats.hot_loops == 1
    assert stats.side_traces >= 1 and stats.linked >= 1
    assert stats.side_exits >= 5
    assert stats.trace_share > 0.95
    # Without accounting the code counts nothing, and the engine counts the
    # exits that come back to it: the same ones, so the same traces and links.
    quiet, counted_here = tiered(program, [10_000], hot_loop=10, hot_exit=5)
    assert quiet == outcome and not counted_here.accounted and counted_here.trace_ops == 0
    for field in ("hot_loops", "traces", "side_traces", "linked", "exits_to_tier1"):
        assert getattr(counted_here, field) == getattr(stats, field), field
    assert counted_here.uops_compiled < stats.uops_compiled  # (no COUNT and TAKE_EXIT steps)
    assert "counted nothing" in counted_here.report()


def test_runtime_error_inside_a_trace_matches_the_interpreter():
    source = """
.args 1
.func main locals=2
    arg 0
    store 0
loop:
    push_int 1000
    load 0
    div
    load 1
    add
    store 1
    load 0
    push_int 1
    sub
    store 0
    jump loop
"""
    program = parse(source, "boom.uop")
    outcome, stats = tiered(program, [500], hot_loop=5, accounting=True)
    expected = ENGINES["py"](program, [500])
    assert outcome == expected
    assert outcome.error == "boom.uop:9: div: integer division by zero"
    assert stats.traces >= 1 and stats.trace_ops > 0.9 * 500 * 11  # the error struck in the trace


def test_memory_error_inside_a_trace():
    source = """
.memory 100
.func main locals=1
loop:
    load 0
    load 0
    mstore
    load 0
    push_int 1
    add
    store 0
    jump loop
"""
    program = parse(source, "mem.uop")
    outcome, stats = tiered(program, [], hot_loop=3)
    assert outcome == ENGINES["py"](program, [])
    assert outcome.error == "mem.uop:7: mstore: memory index 100 out of range (memory has 100 slots)"
    assert stats.traces == 1


SMALL = {
    "nbody": 50,
    "fannkuch": 6,
    "spectralnorm": 12,
    "mandelbrot": 24,
    "sieve": 3000,
    "fib": 12,
    "branchy": 3001,
    "count": 1000,
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_thresholds_do_not_change_results(name):
    """Threshold 1 (trace everything at once), tiny traces, and never: all as py."""
    program = parse_file(PROGRAMS / f"{name}.uop")
    args = [SMALL[name]]
    expected = ENGINES["py"](program, args)
    for config in (
        dict(hot_loop=1, hot_exit=1, max_trace=1000),
        dict(hot_loop=1, hot_exit=1, max_trace=3),
        dict(hot_loop=2, hot_exit=7, max_trace=17),
        dict(hot_loop=1 << 40, hot_exit=1 << 40),
    ):
        outcome, _ = tiered(program, args, **config)
        assert outcome == expected, config


def _decisions(stats: TierStats) -> TierStats:
    """A run's statistics without the times and without which compiles the
    loop between the tiers made (what differs between two runs that decide alike)."""
    return dataclasses.replace(
        stats, compile_seconds=0.0, record_seconds=0.0, setup_seconds=0.0,
        loop_compiles=0, loop_compile_ops=0, loop_compile_seconds=0.0,
    )  # fmt: skip


@pytest.mark.parametrize("accounting", [False, True], ids=["plain", "accounting"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_loop_between_the_tiers_in_c_decides_as_the_python_loop(name, accounting):
    """stencils/tiers.c against the controller's own loop: the same outcome,
    and the same traces, links, entries, exits and calls, at the default
    thresholds and at thresholds that make every exit hot at once."""
    program = parse_file(PROGRAMS / f"{name}.uop")
    args = [SMALL[name]]
    expected = ENGINES["py"](program, args)  # (the reference interpreter: neither loop judges the other alone)
    entered = 0
    for config in (dict(), dict(hot_loop=1, hot_exit=1, max_trace=50), dict(hot_loop=3, hot_call=1, hot_exit=2)):
        runs = {}
        for in_c in (True, False):
            outcome, stats = tiered(program, args, accounting=accounting, c_tiering=in_c, **config)
            runs[in_c] = outcome, _decisions(stats)
        assert runs[True] == runs[False], config
        assert runs[True][0] == expected, config
        entered += runs[True][1].entries + runs[True][1].calls
    assert entered > 0  # (the loops had compiled code to hand over to)


def _compiled(run: TieredRun) -> tuple[dict, dict]:
    """Everything a run compiled, by where it starts and its first exit id:
    the formed steps (a jump into other code naming that code, not its
    address), the exits and the stencils stitched; and each linked exit's
    destination, named the same way."""
    name = {}
    for code in run.machine.compiled:
        shape = code.record
        name[code.address(0)] = (shape.start_pc, min(shape.exits, default=-1))

    def step(s):
        return dataclasses.replace(s, target_address=name[s.target_address]) if s.target_address else s

    compiled = {
        name[code.address(0)]: (tuple(map(step, code.steps)), dict(code.record.exits), tuple(code.stencils))
        for code in run.machine.compiled
    }
    links = {exit_id: name[ex.destination] for exit_id, ex in run.exits.items() if ex.linked}
    return compiled, links


@pytest.mark.parametrize("room", ["default", "one-compile-runs", "one-entry-log"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_loop_in_c_traces_and_links_as_the_controller_would(monkeypatch, name, room):
    """stencils/tiers.c traces hot loops and links hot exits (to a side
    trace it compiles, or to the trace where the exit resumes) itself: the
    same outcome, statistics, code (steps, exits, stencils) and links as
    when the controller does each; also when each open run holds one
    compile (a compile that does not fit goes back to the controller,
    recorded) and when the loop's logs hold one entry (the next hot header
    or exit goes back)."""
    from jit.runtime import machines
    from jit.runtime.native import native_runtime

    arena = native_runtime().arena
    if room == "one-compile-runs":
        monkeypatch.setattr(arena, "run_size", 1)
        arena.code_run()
        arena.refill(1)  # (the open run as small as a compile: every next one needs another)
    elif room == "one-entry-log":
        monkeypatch.setattr(machines, "LOG", 1)
    handed_back = []  # (paths the loop in C recorded, compiled by the controller)
    record_and_compile = TieredRun._record_and_compile

    def counted(self, *args, **kwargs):
        handed_back.append(kwargs.get("recorded") is not None)
        return record_and_compile(self, *args, **kwargs)

    monkeypatch.setattr(TieredRun, "_record_and_compile", counted)
    program = parse_file(PROGRAMS / f"{name}.uop")
    args = [SMALL[name]]
    expected = ENGINES["py"](program, args)
    compiles = 0
    for config in (dict(), dict(hot_loop=1, hot_exit=1, max_trace=50), dict(hot_loop=3, hot_call=1, hot_exit=2)):
        runs = {}
        for in_c in (True, False):
            run = TieredRun(program, args, TierConfig(c_compiles=in_c, **config))
            try:
                run.execute()
                outcome = run.machine.outcome()
                compiled = _compiled(run)
            finally:
                run.close()
            runs[in_c] = outcome, _decisions(run.stats), compiled
        assert runs[True] == runs[False], config
        assert runs[True][0] == expected, config
        compiles += runs[False][1].traces
    if room == "one-compile-runs":  # (compiles the loop in C tried came back to the controller)
        assert any(handed_back) or compiles <= 3


# Two loops, one after the other, run again and again: the first one's exit
# resumes at the second one's header, which has a trace of its own by the
# time that exit is hot: the exit is linked straight to it.
INTO_A_LOOP = """
.args 1
.func main locals=4
    arg 0
    store 3
outer:
    load 3
    jz done
    push_int 30
    store 0
    push_int 40
    store 1
first:
    load 0
    jz second
    load 0
    push_int 1
    sub
    store 0
    jump first
second:
    load 1
    jz next
    load 1
    push_int 1
    sub
    store 1
    load 2
    push_int 1
    add
    store 2
    jump second
next:
    load 3
    push_int 1
    sub
    store 3
    jump outer
done:
    load 2
    print_int
    halt
"""


@pytest.mark.parametrize("in_c", [True, False], ids=["loop-in-c", "controller"])
def test_an_exit_into_a_traced_loop_links_straight_to_its_trace(monkeypatch, in_c):
    """Whoever links it (the loop in C, or the controller), the exit jumps
    to the trace at the loop header where it resumes: no side trace."""
    from jit.runtime import machines

    linked_in_c = []
    take_links = machines.NativeMachine.take_links

    def counted(self):
        links = take_links(self)
        linked_in_c.extend(exit_id for exit_id, *_ in links)
        return links

    monkeypatch.setattr(machines.NativeMachine, "take_links", counted)
    program = parse(INTO_A_LOOP, "into_a_loop.uop")
    run = TieredRun(program, [50], TierConfig(c_compiles=in_c))
    try:
        run.execute()
        assert run.machine.outcome() == ENGINES["py"](program, [50])
        heads = {code.address(0): pc for pc, code in run.traces.items()}
        straight = [i for i, ex in run.exits.items() if ex.linked and ex.destination in heads]
        assert straight, run.stats.report()
        assert all(run.exits[i].info.resume_pc == heads[run.exits[i].destination] for i in straight)
        assert bool(set(straight) & set(linked_in_c)) == in_c
    finally:
        run.close()


def test_the_loop_in_c_makes_most_compiles_and_links(monkeypatch):
    """nbody at the default thresholds: after the first compile (the
    controller's, which sets the compiler up), the loop in C compiles the
    traces and links the exits itself."""
    from jit.runtime import machines

    made = {"compiles": 0, "links": 0}
    for what in made:
        method = getattr(machines.NativeMachine, f"take_{what}")

        def counted(self, method=method, what=what):
            result = method(self)
            made[what] += len(result)
            return result

        monkeypatch.setattr(machines.NativeMachine, f"take_{what}", counted)
    outcome, stats = tiered(parse_file(PROGRAMS / "nbody.uop"), [1000])
    assert outcome.status == "halted" and stats.traces >= 5 and stats.linked >= 3, stats.report()
    assert made["compiles"] >= stats.traces - 2 and made["links"] >= stats.linked - 1, (made, stats.report())


@pytest.mark.parametrize(("name", "arg"), [("nbody", 1000), ("spectralnorm", 100), ("mandelbrot", 200)])
def test_hot_loops_run_in_traces(name, arg):
    program = parse_file(PROGRAMS / f"{name}.uop")
    outcome, stats = tiered(program, [arg], accounting=True)
    assert outcome.status == "halted"
    assert stats.trace_share >= 0.9, stats.report()
    # Once linked, the traces hand over to each other: tier 1 rarely re-enters them.
    assert stats.entries < 100, stats.report()


def test_a_return_out_of_a_trace_goes_straight_to_the_callers_trace():
    """nbody's step loop calls advance, whose last loop ends in a ret: that ret
    becomes the end of a side trace and jumps into the step loop's trace."""
    program = parse_file(PROGRAMS / "nbody.uop")
    _, stats = tiered(program, [4000])
    assert stats.entries < 200 and stats.side_traces >= 4, stats.report()


def test_known_outputs_under_the_default_engine():
    """`python -m jit run` with no --engine is the tiered JIT."""
    out = subprocess.run(
        [sys.executable, "-m", "jit", "run", "bench/programs/spectralnorm.uop", "100", "--stats"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0
    assert out.stdout == "1.274219991\n"
    assert "micro-ops run in compiled code" in out.stderr and "traces compiled" in out.stderr
    # (a fresh process sets the compiler up before its first compile, timed apart from compiling)
    assert re.search(r"compile time [0-9.]+ ms \(and [0-9.]+ ms setting the compiler up first\)", out.stderr)


@pytest.mark.parametrize("dual", [True, False], ids=["dual-mapping", "mprotect"])
def test_linking_never_makes_memory_writable_and_executable(monkeypatch, dual):
    """Dual mapping: the code is only ever read-execute, written through a
    read-write view of the same pages, and no protection changes at all;
    without it (Arena(dual=False)), each compile and link flips a region
    between read-write and read-execute.  Never both, either way."""
    from jit.runtime.memory import Arena
    from jit.runtime.native import NativeRuntime, native_runtime

    seen = []
    real = memory.protect

    def spy(address, size, prot):
        seen.append(prot)
        real(address, size, prot)

    monkeypatch.setattr(memory, "protect", spy)
    runtime = NativeRuntime(native_runtime().library, arena=Arena(dual=dual))
    program = parse(PHASES, "phases.uop")
    views = []

    def mapped(address: int) -> str | None:
        """The protection of the mapping that holds `address`, as /proc/self/maps says."""
        with open("/proc/self/maps") as f:
            for line in f:
                low, high = (int(x, 16) for x in line.split()[0].split("-"))
                if low <= address < high:
                    return line.split()[1]
        return None

    def look(code, shape, side):  # (each compile, once sealed: how its code is mapped)
        region = code.region
        views.append((mapped(region.address), mapped(region.view) if region.chunk.view else None))

    config = TierConfig(hot_loop=5, hot_exit=2)
    prepared = prepare_tiered(program, [2000], config, on_compile=look, backend=runtime)
    outcome = prepared()
    assert outcome == ENGINES["py"](program, [2000])
    stats = prepared.stats
    assert stats.linked >= 1
    rw, rx = memory.PROT_READ | memory.PROT_WRITE, memory.PROT_READ | memory.PROT_EXEC
    if dual:
        assert seen == [] and views and set(views) == {("r-xs", "rw-s")}
    else:
        assert seen.count(rw) >= stats.linked  # each link re-opened a region for writing
        assert set(seen) <= {rw, rx, memory.PROT_NONE}
        assert views and {v for v, _ in views} == {"r-xp"}
    runtime.close()
    assert runtime.arena.stats()["mappings"] == 0


def test_perf_map_names_each_trace():
    proc = subprocess.Popen(
        [sys.executable, "-m", "jit", "run", "bench/programs/mandelbrot.uop", "40", "--perf-map", "--stats"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, err = proc.communicate()
    path = f"/tmp/perf-{proc.pid}.map"
    try:
        assert proc.returncode == 0
        with open(path) as f:
            lines = f.read().splitlines()
    finally:
        if os.path.exists(path):
            os.unlink(path)
    compiled = int(err.split("traces compiled ")[1].split()[0]) + int(err.split("functions compiled ")[1].split(",")[0])
    assert len(lines) == compiled >= 2
    for line in lines:
        start, size, name = line.split(" ", 2)
        assert int(start, 16) > 0 and int(size, 16) > 0
        assert name.startswith("jit:mandelbrot.uop:")


def test_bad_thresholds_are_usage_errors():
    out = subprocess.run(
        [sys.executable, "-m", "jit", "run", "bench/programs/fib.uop", "5", "--hot-loop", "0"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 2 and out.stderr == "error: --hot-loop: must be at least 1\n"


def test_agreement_includes_the_tiered_engines():
    outcome = agree(PHASES, [300])
    assert outcome.status == "halted"


@pytest.mark.parametrize("backend", ["llvm-O0", "llvm-O2"])
@pytest.mark.parametrize("name", ["nbody", "mandelbrot", "fannkuch", "fib"])
def test_llvm_backends_trace_and_link_like_copy_and_patch(name, backend):
    """Same traces, same functions, same exits, same links: only the code
    generator differs."""
    from jit.runtime.llvm_backend import llvm_backend

    program = parse_file(PROGRAMS / f"{name}.uop")
    # (no passes: copy-and-patch's default, registers, adds steps the peer's compiles do not have)
    config = TierConfig(hot_loop=5, hot_call=5, hot_exit=3, accounting=True, passes=())
    ours = prepare_tiered(program, [SMALL[name]], config)
    peer = prepare_tiered(program, [SMALL[name]], config, backend=llvm_backend(int(backend[-1])))
    assert peer() == ours() == ENGINES["py"](program, [SMALL[name]])
    for field in ("hot_loops", "functions", "traces", "side_traces", "linked", "uops_compiled", "side_exits"):
        assert getattr(peer.stats, field) == getattr(ours.stats, field), field
    assert peer.stats.trace_ops == ours.stats.trace_ops
    assert ours.stats.functions >= (name == "fib")


CALLS = """
.args 1
.func main locals=2
    arg 0
    store 1
again:
    load 1
    jz done
    load 1
    call outer
    print_int
    print_str " "
    load 1
    push_int 1
    sub
    store 1
    jump again
done:
    halt
.func outer params=1 results=1
    load 0
    call inner
    push_int 3
    add
    ret
.func inner params=1 results=1
    load 0
    load 0
    mul
    push_int 7
    load 0
    mod
    div
    ret
"""


def test_recursion_runs_in_a_hot_function_compiled_whole():
    program = parse_file(PROGRAMS / "fib.uop")
    outcome, stats = tiered(program, [20], hot_call=50, accounting=True)
    assert outcome.output == b"6765\n"
    assert stats.functions == 1 and stats.hot_loops == 0
    assert stats.trace_share > 0.99, stats.report()  # its blocks count what they run
    assert stats.calls < 2 * 20, stats.report()  # only from frames tier 1 had open when it was compiled


def test_a_call_out_of_a_compiled_function_links_to_the_callee_compiled_whole():
    program = parse(CALLS, "calls.uop")
    # no loop traces: tier 1 calls outer, whose call of inner leaves it until linked
    outcome, stats = tiered(program, [60], hot_loop=1 << 40, hot_call=3, hot_exit=2)
    assert outcome == ENGINES["py"](program, [60])
    assert stats.functions == 2 and stats.traces == 0
    assert stats.linked == 1, stats.report()


def test_an_error_deep_in_a_compiled_function_matches_the_interpreter():
    program = parse(CALLS, "calls.uop")
    # inner divides by (7 mod x): x = 7 fails, after outer and inner are compiled
    outcome, stats = tiered(program, [40], hot_loop=1 << 40, hot_call=2, hot_exit=1)
    assert outcome == ENGINES["py"](program, [40])
    assert outcome.error == "calls.uop:33: div: integer division by zero"
    assert stats.functions == 2


def test_a_function_whose_first_instruction_heads_a_loop_gets_both():
    """Back-edges to `top` make a loop trace; calls of `countdown` compile it whole."""
    source = """
.func main locals=1
    push_int 6
    store 0
again:
    push_int 100
    call countdown
    print_int
    load 0
    push_int 1
    sub
    store 0
    load 0
    jnz again
    halt
.func countdown params=1 results=1
top:
    load 0
    push_int 1
    sub
    store 0
    load 0
    jnz top
    push_int 42
    ret
"""
    program = parse(source, "both.uop")
    outcome, stats = tiered(program, [], hot_loop=3, hot_call=2)
    assert outcome == ENGINES["py"](program, []) and outcome.output == b"42" * 6
    assert stats.hot_loops >= 1 and stats.traces >= 1 and stats.functions == 1, stats.report()
