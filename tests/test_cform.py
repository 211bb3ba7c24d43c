"""Trace forming in C (stencils/form.c) against the Python reference (jit.codegen.trace).

Every path the tiered engine records, and every function of a program, in
the bundled programs and in random ones, is formed both ways: the steps
(ops, operands, positions, jump targets, exits, return points, link
addresses), the exits and the kind must be the same, with superinstructions
and without, with accounting and without, with the registers pass and
without.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jit.codegen.cform import PackedSteps
from jit.codegen.passes import C_PASSES
from jit.codegen.trace import FUNCTION, Handover, TraceShape, form
from jit.lang.ir import Program, wrap64
from jit.lang.uop import parse
from jit.runtime.config import TierConfig
from jit.runtime.tiering import prepare_tiered
from jit.tools.benchmark import SIZES, load_programs
from jit.tools.fuzzgen import build, programs


def recorded(program: Program, args: list[int], config: TierConfig | None = None) -> list[Handover]:
    """The handovers of every path a tiered run compiles."""
    found: list[Handover] = []

    def keep(code, shape: TraceShape, side: bool) -> None:
        if shape.handover is not None and shape.handover.kind != FUNCTION:
            found.append(shape.handover)

    prepare_tiered(program, args, config, on_compile=keep)()
    return found


def functions(program: Program, first_exit: int = 7) -> list[Handover]:
    """A handover of every function of the program, as for a hot function."""
    return [Handover(FUNCTION, (), f.start, first_exit) for f in program.functions]


SWITCHES = [(fuse, counts, chosen) for fuse in (True, False) for counts in (True, False) for chosen in ((), C_PASSES)]


def assert_same(program: Program, handover: Handover) -> None:
    for fuse, accounting, chosen in SWITCHES:
        h = replace(handover, superinstructions=fuse, accounting=accounting, passes=chosen)
        c, py = form(program, replace(h, in_c=True)), form(program, replace(h, in_c=False))
        assert isinstance(c.steps, PackedSteps) and not isinstance(py.steps, PackedSteps)
        assert list(c.steps) == list(py.steps), (h.pcs, h.kind)
        assert (c.exits, c.kind, c.start_pc, c.ops) == (py.exits, py.kind, py.start_pc, py.ops)
        steps = list(c.steps)
        assert all(steps[e.step].op == "EXIT" for e in c.exits.values())
        if accounting:  # every exit stub counts its exit first; a loop counts its pass
            assert all(steps[e.step - 1].op == "TAKE_EXIT" for e in c.exits.values())
            top = next(k for k, s in enumerate(steps) if not s.op.startswith("FILL_R"))  # (a loop goes on after them)
            back = [k for k, s in enumerate(steps) if s.op == "JUMP" and s.target == top]
            assert c.kind.value != "loop" or (back and all(steps[k - 1].op == "COUNT" for k in back))
        else:
            assert not {"COUNT", "TAKE_EXIT"} & {s.op for s in steps}


def test_every_bundled_programs_traces_are_formed_alike():
    count = in_registers = 0
    for name, program in load_programs(SIZES).items():
        for handover in recorded(program, [SIZES[name]]):
            assert_same(program, handover)
            count += 1
            steps = form(program, replace(handover, passes=C_PASSES)).steps
            in_registers += any(s.op.startswith("FILL_R") for s in steps)
    assert count > 40  # (every kind of ending is among them: the test below counts them)
    assert in_registers >= 8  # (the loop traces of every program with an integer loop keep locals in registers)


def test_every_function_of_the_bundled_programs_is_formed_alike():
    calls = recursive = 0
    for program in load_programs(SIZES).values():
        for handover in functions(program):
            assert_same(program, handover)
            shape = form(program, handover)
            calls += sum(e.call for e in shape.exits.values())
            recursive += sum(s.op == "CALL" and s.target == 0 for s in shape.steps)
    assert calls and recursive  # calls of other functions (through exits), and of itself (fib)


def test_every_ending_is_covered():
    kinds = set()
    for name, program in load_programs(SIZES).items():
        for handover in recorded(program, [SIZES[name]], TierConfig(hot_loop=1, hot_exit=1, max_trace=40)):
            assert_same(program, handover)
            kinds.add(form(program, handover).kind.value)
    assert kinds == {"loop", "link", "exit", "return"}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(programs, st.integers(-50, 50))
def test_random_programs_traces_are_formed_alike(drawn, arg):
    program = build(drawn)
    for handover in recorded(program, [arg, arg], TierConfig(hot_loop=1, hot_exit=1, hot_call=1)):
        assert_same(program, handover)
    for handover in functions(program):
        assert_same(program, handover)


def test_packed_steps_read_as_steps():
    program = load_programs({"sieve": 100})["sieve"]
    handover = recorded(program, [100])[0]
    steps = form(program, handover).steps
    assert isinstance(steps, PackedSteps)
    listed = list(steps)
    assert len(steps) == len(listed) and steps[0] == listed[0] and steps[-1] == listed[-1]
    assert steps[1:3] == listed[1:3] and steps == listed


def test_operands_beyond_int64_reach_c_wrapped():
    """A program built in Python may hold an operand as an unsigned 64-bit
    value (above int64's range, which the text format refuses): it reaches
    C as the same 64 bits (as an int64, where the Python reference keeps
    the value as written)."""
    parsed = parse(".func main\n push_int -1\n push_int 5\n add\n print_int\n halt\n")
    code = list(parsed.code)
    code[0] = replace(code[0], a=(1 << 64) - 1)
    program = replace(parsed, code=tuple(code))
    handover = Handover(FUNCTION, (), 0, 0)
    c, py = form(program, handover), form(program, replace(handover, in_c=False))
    assert list(c.steps) == [replace(s, operand0=wrap64(s.operand0)) for s in py.steps]
    assert -1 in [s.operand0 for s in c.steps]


def test_a_path_outside_the_program_is_refused_before_c_reads_it():
    program = load_programs({"sieve": 100})["sieve"]
    handover = recorded(program, [100])[0]
    for bad in ([len(program.code)], [-1], [0, 10**9]):
        with pytest.raises(ValueError, match="outside the program"):
            form(program, replace(handover, pcs=tuple(bad)))


def test_a_step_plan_is_as_wide_as_python_packs_it():
    """STEP_FIELDS (jit.codegen.cform) against vm.h's StepPlan, as cffi sizes it."""
    from jit.build.hostlib import hostlib
    from jit.codegen.cform import STEP_FIELDS

    ffi, _ = hostlib()
    assert ffi.sizeof("StepPlan") == 8 * STEP_FIELDS


def test_the_float_superinstructions_are_numbered_alike():
    """form.c indexes FormOps' float arrays as jit.codegen.fuse.FLOAT orders them (vm.h's FLOAT_*)."""
    from jit.codegen.fuse import FLOAT
    from jit.vmdef import constant

    assert constant("FLOAT_FUSED") == len(FLOAT)
    assert (constant("FLOAT_ADD"), constant("FLOAT_MUL")) == (FLOAT.index("FADD"), FLOAT.index("FMUL"))


def test_the_comparisons_are_numbered_alike():
    """form.c indexes FormOps' comparison arrays, and pairs each with its
    opposite, in jit.codegen.fuse.COMPARES's order (vm.h's COMPARES)."""
    from jit.codegen.fuse import COMPARES
    from jit.vmdef import constant

    assert constant("COMPARES") == len(COMPARES)
    opposites = [("EQ", "NE"), ("NE", "EQ"), ("LT", "GE"), ("LE", "GT"), ("GT", "LE"), ("GE", "LT")]
    assert list(COMPARES.items()) == opposites


def test_comparisons_fused_with_their_branches_are_formed_alike():
    from jit.codegen.fuse import COMPARES
    from tests.test_fuse import comparisons_program

    program = parse(comparisons_program(), "comparisons.uop")
    handovers = recorded(program, [3], TierConfig(hot_loop=1, hot_exit=1))
    for handover in [*handovers, *functions(program)]:
        assert_same(program, handover)
    made = {s.op for h in [*handovers, *functions(program)] for s in form(program, h).steps}
    assert {f"GUARD_{c}" for c in COMPARES} | {f"J{c}" for c in COMPARES} <= made
