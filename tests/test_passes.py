"""Trace-level passes (jit.codegen.passes): what each rewrites, that nothing else changes, and that users can add one.

Whether the rewritten code computes what the interpreters compute is the
differential fuzzer's job (tests/test_fuzz.py runs every program with all of
them, and with each alone); here each pass is shown doing its rewrite, and
keeping off what it must not touch.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import jit
from jit.codegen import passes
from jit.codegen.step import Step
from jit.codegen.trace import program_steps
from jit.lang.ir import bits_float
from jit.paths import ROOT


def ops(text: str, names: tuple[str, ...]) -> list[tuple[str, int]]:
    program = jit.parse(text, "t.uop")
    return [(s.op, s.operand0) for s in program_steps(program, superinstructions=False, passes=names)]


def test_fold_chains_constants_into_one_through_the_reference_semantics():
    text = ".func main\n push_int 2\n push_int 3\n add\n push_int 4\n mul\n push_int 70\n shl\n print_int\n halt\n"
    assert ops(text, ("fold",)) == [("PUSH_INT", 20 << 6), ("PRINT_INT", 0), ("HALT", 0)]  # (shift counts wrap at 64)
    floats = ".func main\n push_float 1.5\n push_float 2\n fadd\n print_float 3\n halt\n"
    ((op, bits), *_) = ops(floats, ("fold",))
    assert op == "PUSH_FLOAT" and bits_float(bits) == 3.5


def test_fold_keeps_what_fails_or_is_not_constant():
    assert ops(".func main\n push_int 1\n push_int 0\n div\n print_int\n halt\n", ("fold",))[:3] == [
        ("PUSH_INT", 1), ("PUSH_INT", 0), ("DIV", 0),
    ]  # fmt: skip
    assert ops(".args 1\n.func main\n arg 0\n push_int 1\n add\n print_int\n halt\n", ("fold",))[:3] == [
        ("ARG", 0), ("PUSH_INT", 1), ("ADD", 0),
    ]  # fmt: skip


def test_no_pass_reaches_across_a_step_something_jumps_to():
    steps = [
        Step("PUSH_INT", 2),
        Step("PUSH_INT", 3),  # entered from the jump below
        Step("ADD"),
        Step("STORE", 0),
        Step("LOAD", 0),  # entered from the jump below
        Step("DROP"),
        Step("JUMP", target=1),
        Step("JUMP", target=4),
    ]
    for name in passes.BUILTIN_PASSES:
        if name != "registers":  # (not a rewrite of neighbours: it gives the whole loop's local a register, below)
            assert passes.PASSES[name].run(steps)[0] == steps, name


def test_forward_stores_keeps_the_stored_value_instead_of_reading_it_back():
    text = ".func main locals=1\n arg 0\n store 0\n load 0\n print_int\n halt\n"
    assert ops(".args 1\n" + text, ("forward-stores",))[:3] == [("ARG", 0), ("DUP", 0), ("STORE", 0)]


def traces(text: str, args: list[int], names: tuple[str, ...]) -> list:
    shapes = []
    program = jit.parse(text, "t.uop")
    result = jit.run(program, args, passes=names, on_compile=lambda code, shape, side: shapes.append(shape))
    return [result.output, shapes]


LOOP = """\
.args 1
.func main locals=1
    arg 0
    store 0
top:
    load 0
    push_int 1
    sub
    store 0
    push_int 1
    jnz always
    push_int 7
    print_int
always:
    load 0
    jnz top
    halt
"""


def test_known_guards_removes_a_guard_on_a_constant_and_exits_still_point_at_their_stubs():
    (out_on, on), (out_off, off) = traces(LOOP, [500], passes.BUILTIN_PASSES), traces(LOOP, [500], ())
    assert out_on == out_off and on and off
    guards = [[s.op for s in shape.steps if s.op.startswith("GUARD")] for shape in (on[0], off[0])]
    assert len(guards[0]) == len(guards[1]) - 1  # (the guard on `push_int 1` is gone)
    for shape in on + off:
        assert all(shape.steps[e.step].op == "EXIT" for e in shape.exits.values())


class StrengthReduction:
    """A user's pass: multiplying by a power of two becomes a shift."""

    name = "test-strength-reduction"

    def run(self, steps):
        out, where, i = [], [], 0
        while i < len(steps):
            s = steps[i]
            nxt = steps[i + 1] if i + 1 < len(steps) else None
            k = s.operand0
            if s.op == "PUSH_INT" and k > 0 and k & (k - 1) == 0 and nxt is not None and nxt.op == "MUL":
                where += [len(out), len(out) + 1]
                out += [Step("PUSH_INT", k.bit_length() - 1, 0, s.position), Step("SHL", 0, 0, nxt.position)]
                i += 2
                continue
            where.append(len(out))
            out.append(s)
            i += 1
        where.append(len(out))
        return passes.renumber(out, where), where


@pytest.fixture
def user_pass():
    p = StrengthReduction()
    passes.register(p)
    yield p
    del passes.PASSES[p.name]


def test_a_users_pass_is_registered_by_name_and_runs_where_it_is_named(user_pass):
    text = ".args 1\n.func main\n arg 0\n push_int 8\n mul\n print_int\n halt\n"
    assert ("SHL", 0) in ops(text, (user_pass.name,))
    program = jit.parse(text, "t.uop")
    assert jit.run(program, [5], eager=True, passes=[user_pass.name]).output == b"40"
    with pytest.raises(ValueError, match="new, non-empty name"):
        passes.register(user_pass)


def test_an_unknown_pass_is_a_clear_error_in_the_api_and_the_cli():
    program = jit.parse(".func main\n halt\n", "t.uop")
    with pytest.raises(jit.JitError, match="no pass named nope"):
        jit.run(program, passes=["nope"])
    with pytest.raises(jit.JitError, match="go with the jit engine"):
        jit.run(program, engine="py", passes=[])
    argv = [sys.executable, "-m", "jit", "run", "bench/programs/fib.uop", "10", "--passes", "fold,nope"]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 2 and "no pass named nope" in out.stderr and "Traceback" not in out.stderr


# A loop that reads memory at `base + 0 .. base + 3` (local 1, never stored in
# the loop) and stores at `i` (local 0, the counter): the first range is
# hoisted, the second is not.
HOIST = """\
.args 2
.memory 8
.func main locals=3
    arg 0
    store 0
    arg 1
    store 1
top:
    load 1
    mload
    load 1
    push_int 3
    add
    mload
    add
    load 2
    add
    store 2
    load 0
    push_int 7
    and
    load 0
    mstore
    load 0
    push_int 1
    sub
    dup
    store 0
    jnz top
    load 2
    print_int
    halt
"""


def shapes_of(text: str, args: list[int], names: tuple[str, ...], **how) -> tuple[jit.Result, list]:
    shapes: list = []
    program = jit.parse(text, "t.uop")
    result = jit.run(program, args, passes=names, on_compile=lambda code, shape, side: shapes.append(shape), **how)
    return result, shapes


@pytest.mark.parametrize("target", [None, "aarch64-linux"])
def test_hoist_bounds_checks_a_loop_invariant_range_once_and_runs_the_loop_without_checks(target):
    how = {} if target is None else {"target": target}
    result, shapes = shapes_of(HOIST, [300, 2], ("hoist-bounds",), **how)
    reference = jit.run(jit.parse(HOIST, "t.uop"), [300, 2], engine="switch")
    assert (result.output, result.status) == (reference.output, reference.status) and result.status == "halted"
    loop = next(shape for shape in shapes if any(s.op == "CHECK_INDEX" for s in shape.steps))
    ops = [s.op for s in loop.steps]
    guards = [(s.operand0, s.operand1) for s in loop.steps if s.op == "CHECK_INDEX"]
    assert guards == [(1, 0), (1, 3)]  # (local 1 at its smallest and largest offset)
    assert ops.count("MLOAD_IN_RANGE") == 2 and ops.count("MLOAD") == 2  # (the copy without checks, and the loop)
    assert ops.count("MSTORE") == 2 and "MSTORE_IN_RANGE" not in ops  # (indexed by the counter, stored in the loop)
    fast, slow = len(guards), ops.index("MLOAD", len(guards)) - 1
    assert all(s.target == slow for s in loop.steps[:fast])
    jumps = [s.target for s in loop.steps if s.op == "JUMP"]
    assert jumps == [fast, slow]  # (each copy loops to itself)
    assert all(loop.steps[e.step].op == "EXIT" for e in loop.exits.values())


def test_hoist_bounds_fails_where_the_interpreter_fails_when_the_range_is_out():
    """base 5: base + 3 is past the 8 slots; the guard sends the loop to
    the copy with the checks, which fails at that mload as tier 1 would."""
    result, _ = shapes_of(HOIST, [300, 5], ("hoist-bounds",))
    reference = jit.run(jit.parse(HOIST, "t.uop"), [300, 5], engine="switch")
    assert result.status == reference.status == "error"
    assert (result.error, result.pc, result.output) == (reference.error, reference.pc, reference.output)
    assert "memory index 8 out of range" in result.error


def test_hoist_bounds_leaves_a_local_the_loop_stores():
    stored = HOIST.replace("    store 2\n", "    store 2\n    load 1\n    store 1\n", 1)
    result, shapes = shapes_of(stored, [300, 2], ("hoist-bounds",))
    assert shapes and not any(s.op == "CHECK_INDEX" for shape in shapes for s in shape.steps)
    assert result.output == jit.run(jit.parse(stored, "t.uop"), [300, 2], engine="switch").output


# A loop (its counter and sum in locals 0 and 2) that calls a function with
# a loop of its own, and leaves through a side exit now and then (every
# 16th pass prints): registers in both functions, spilled around the call.
CALLS = """\
.args 1
.func main locals=3
    arg 0
    store 0
top:
    load 2
    load 0
    call twice
    add
    store 2
    load 0
    push_int 15
    and
    jnz quiet
    load 2
    print_int
    print_str " "
quiet:
    load 0
    push_int 1
    sub
    dup
    store 0
    jnz top
    load 2
    print_int
    halt
.func twice params=1 locals=2 results=1
    push_int 2
    store 1
again:
    load 0
    load 0
    add
    store 0
    load 1
    push_int 1
    sub
    dup
    store 1
    jnz again
    load 0
    ret
"""


def test_registers_keeps_a_loops_locals_in_registers_and_spills_them_around_calls():
    program = jit.parse(CALLS, "t.uop")
    steps = program_steps(program, superinstructions=False, passes=("registers",))
    callee = next(s.target for s in steps if s.op == "CALL")
    main, twice = steps[:callee], steps[callee:]
    names = [s.op for s in main]
    assert names[:2] == ["FILL_R0", "FILL_R1"] and [s.operand0 for s in main[:2]] == [0, 2]  # (the two most used)
    assert "LOAD" not in names and "STORE" not in names  # (every local of main is in a register)
    call = names.index("CALL")
    assert names[call - 2 : call] == ["SPILL_R0", "SPILL_R1"] and names[call + 1 : call + 3] == ["FILL_R0", "FILL_R1"]
    loop = next(s for s in main if s.op == "JNZ" and s.target is not None and s.target < call)
    assert (main[loop.target].op, main[loop.target].position) == ("LOAD_R1", 2)  # (`top:`, load 2: no fill again)
    assert [s.op for s in twice[:2]] == ["FILL_R0", "FILL_R1"]  # (a call enters at the callee's fills)
    assert [s.position for s in main[-1:] + twice[2:3]] == [22, 23]  # (the functions split where they did)
    assert "RET" in [s.op for s in twice] and "SPILL_R0" not in [s.op for s in twice]  # (a ret leaves no frame)
    reference = jit.run(program, [100], engine="switch")
    for how in ({"eager": True}, {}, {"eager": True, "target": "aarch64-linux"}, {"target": "aarch64-linux"}):
        result = jit.run(program, [100], passes=["registers"], **how)
        assert (result.output, result.status) == (reference.output, reference.status), how


def test_registers_spills_what_a_trace_stored_before_each_exit_and_fills_on_entry():
    result, shapes = shapes_of(CALLS.replace("    call twice\n", "    dup\n    add\n"), [100], ("registers",))
    reference = jit.run(jit.parse(CALLS.replace("    call twice\n", "    dup\n    add\n"), "t.uop"), [100])
    assert result.output == reference.output and shapes
    for shape in shapes:
        ops = [s.op for s in shape.steps]
        filled = {s.operand0 for s in shape.steps if s.op.startswith("FILL")}
        if not any(s.op == "JUMP" and s.target is not None for s in shape.steps):
            assert not filled  # (a trace that does not loop keeps its locals in memory)
            continue
        assert ops[: len(filled)] == [f"FILL_R{j}" for j in range(len(filled))]
        stored = {s.op[-1] for s in shape.steps if s.op.startswith("STORE_R")}
        for e in shape.exits.values():  # (each exit stub writes back the registers the trace stores)
            first = e.step - 1 if ops[e.step - 1] == "TAKE_EXIT" else e.step
            spilled = {op[-1] for op in ops[first - len(stored) : first] if op.startswith("SPILL")}
            assert spilled == stored, (ops, e)
        back = next(s for s in shape.steps if s.op == "JUMP" and s.target is not None)
        assert back.target == len(filled)


def test_registers_leaves_float_locals_and_straight_line_code_in_memory():
    floats = ".func main locals=2\n push_float 0.5\n store 0\ntop:\n load 0\n load 0\n fmul\n store 0\n"
    floats += " load 1\n push_int 1\n add\n dup\n store 1\n push_int 9\n lt\n jnz top\n load 0\n print_float 6\n halt\n"
    assert [(op, local) for op, local in ops(floats, ("registers",)) if op.startswith("FILL")] == [("FILL_R0", 1)]
    straight = (
        ".args 1\n.func main locals=1\n arg 0\n store 0\n load 0\n load 0\n add\n load 0\n add\n print_int\n halt\n"
    )
    assert not any(op.startswith(("FILL", "LOAD_R")) for op, _ in ops(straight, ("registers",)))


def test_eager_code_keeps_locals_in_registers_by_default_and_the_llvm_peer_refuses_them(tmp_path):
    from jit.runtime.llvm_backend import llvm_backend

    program = jit.parse(CALLS, "t.uop")
    (tmp_path / "calls.uop").write_text(CALLS)
    argv = [sys.executable, "-m", "jit", "run", "--eager", "--dump-traces", str(tmp_path / "calls.uop"), "5"]
    shown = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    assert "fill_r0" in shown.stderr and shown.returncode == 0, shown.stderr
    argv[4:4] = ["--passes", ""]  # (none chosen: the code as compiled without the pass)
    plain = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    assert "fill_r0" not in plain.stderr and plain.stdout == shown.stdout
    with pytest.raises(jit.JitError, match="takes no locals in registers"):
        jit.run(program, [5], eager=True, backend="llvm-O2", passes=["registers"])
    assert jit.run(program, [5], eager=True, backend="llvm-O2").output == jit.run(program, [5], engine="py").output
    with pytest.raises(jit.JitError, match="takes no locals in registers"):
        llvm_backend(2).compile(program_steps(program, passes=("registers",)))
