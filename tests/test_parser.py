"""The parser and verifier: every malformed program gets a precise FILE:LINE:COL message."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jit.errors import ProgramError
from jit.lang.ir import ProgramBuilder
from jit.lang.uop import format_program, parse, parse_bytes, parse_file
from jit.paths import ROOT

OK_MAIN = ".func main\n halt\n"

BAD = {
    "unknown_op": (".func main\n frob 3\n halt\n", "t.uop:2:2: unknown op 'frob'"),
    "unknown_directive": (
        ".stack 9\n" + OK_MAIN,
        "t.uop:1:1: unknown directive '.stack' (.func, .memory, .args)",
    ),
    "operand_not_taken": (
        ".func main\n push_int 1\n push_int 2\n add 3\n halt\n",
        "t.uop:4:6: add takes no operand",
    ),
    "operand_missing": (".func main\n push_int\n halt\n", "t.uop:2:2: push_int: needs an operand (int)"),
    "int_too_big": (
        ".func main\n push_int 9223372036854775808\n halt\n",
        "t.uop:2:2: push_int: integer literal 9223372036854775808 out of range",
    ),
    "not_a_float": (
        ".func main\n push_float 1.2.3\n halt\n",
        "t.uop:2:13: push_float: expected a float, got '1.2.3'",
    ),
    "float_too_big": (
        ".func main\n push_float 1e400\n halt\n",
        "t.uop:2:13: push_float: float literal 1e400 out of range",
    ),
    "undefined_label": (
        ".func main\n jump nowhere\n",
        "t.uop:2:2: jump: undefined label 'nowhere' in function 'main'",
    ),
    "duplicate_label": (
        ".func main\nx:\n push_int 1\nx:\n jz x\n halt\n",
        "t.uop:4:1: label 'x' is defined twice in function 'main'",
    ),
    "undefined_function": (".func main\n call g\n halt\n", "t.uop:2:2: call: undefined function 'g'"),
    "duplicate_function": (
        ".func main\n halt\n.func f\n ret\n.func f\n ret\n",
        "t.uop:5:1: function 'f' is defined twice",
    ),
    "local_out_of_range": (
        ".func main locals=2\n load 2\n halt\n",
        "t.uop:2:2: load: local index (function 'main' has 2 locals) 2 out of range",
    ),
    "arg_out_of_range": (
        ".func main\n arg 0\n halt\n",
        "t.uop:2:2: arg: argument index (the program declares .args 0) 0 out of range",
    ),
    "stack_underflow": (
        ".func main\n push_int 1\n add\n halt\n",
        "t.uop:3:2: stack underflow: add needs 2 values, the stack holds 1",
    ),
    "join_mismatch": (
        ".func main\n push_int 0\n jz skip\n push_int 1\nskip:\n halt\n",
        "t.uop:6:2: stack depth differs where paths join: 0 on one path, 1 on another",
    ),
    "falls_off_end": (
        ".func main\n push_int 1\n drop\n",
        "t.uop:3:2: control falls off the end of function 'main' (end it with jump, ret or halt)",
    ),
    "ret_in_main": (".func main\n ret\n", "t.uop:2:2: ret in the entry function: end the program with halt"),
    "ret_wrong_depth": (
        ".func main\n call f\n halt\n.func f results=1\n ret\n",
        "t.uop:5:2: ret with 0 values on the stack; function 'f' returns 1",
    ),
    "unterminated_string": (
        '.func main\n print_str "abc\n halt\n',
        "t.uop:2:12: unterminated string literal",
    ),
    "bad_escape": ('.func main\n print_str "a\\q"\n halt\n', "t.uop:2:12: print_str: unknown escape \\q"),
    "outside_function": ("push_int 1\n" + OK_MAIN, "t.uop:1:1: instruction 'push_int' outside any function"),
    "trace_only_op": (
        ".func main\n push_int 1\n guard_zero x\nx:\n halt\n",
        "t.uop:3:2: 'guard_zero' exists only in traces, not in programs",
    ),
    "absurd_memory": (
        ".memory 1000000000000\n" + OK_MAIN,
        "t.uop:1:9: memory size 1000000000000 is out of range (0 to 16777216 slots)",
    ),
    "memory_twice": (".memory 1\n.memory 2\n" + OK_MAIN, "t.uop:2:1: .memory is declared twice"),
    "no_functions": ("# nothing here\n", "t.uop:1:1: no functions: a program starts with `.func main`"),
    "entry_with_params": (
        ".func main params=1\n halt\n",
        "t.uop:1:1: the first function is the entry: it takes no params and no results",
    ),
    "call_entry": (
        ".func main\n halt\n.func f\n call main\n ret\n",
        "t.uop:4:2: call: 'main' is the entry function and cannot be called",
    ),
    "precision_out_of_range": (
        ".func main\n push_float 1.0\n print_float 99\n halt\n",
        "t.uop:3:2: print_float: precision 99 out of range",
    ),
    "extra_token": (".func main\n push_int 1 2\n halt\n", "t.uop:2:13: unexpected '2' after the operand"),
    "empty_function": (".func main\n halt\n.func f\n", "t.uop:3:1: function 'f' is empty"),
    "bad_func_attribute": (".func main speed=3\n halt\n", "t.uop:1:12: unknown .func attribute 'speed=3'"),
    "params_exceed_locals": (
        ".func main\n halt\n.func f params=3 locals=1\n ret\n",
        "t.uop:3:1: function 'f': need 0 <= params <= locals <= 65535",
    ),
    "label_as_int": (
        ".func main\n push_int ten\n halt\n",
        "t.uop:2:11: push_int: expected an integer, got 'ten'",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_program(name):
    source, message = BAD[name]
    with pytest.raises(ProgramError) as info:
        parse(source, "t.uop")
    assert any(str(d).startswith(message) for d in info.value.diagnostics), info.value
    assert str(info.value).startswith("t.uop:")


def test_there_are_many_kinds_of_error():
    messages = {BAD[name][1].split(": ", 1)[1].split(" ")[0] for name in BAD}
    assert len(BAD) >= 30 and len(messages) >= 15


def test_several_mistakes_are_reported_together():
    source = ".func main\n frob\n push_int x\n jump nowhere\n load 7\n halt\n"
    with pytest.raises(ProgramError) as info:
        parse(source, "t.uop")
    lines = [d.line for d in info.value.diagnostics]
    assert lines == [2, 3, 4, 5]


def test_non_utf8_and_nul_bytes():
    with pytest.raises(ProgramError, match=r"t.uop:2:3: not UTF-8 text"):
        parse_bytes(b".func main\n h\xffalt\n", "t.uop")
    with pytest.raises(ProgramError, match=r"t.uop:2:1: NUL byte in program text"):
        parse_bytes(b".func main\n halt\0\n", "t.uop")


def test_missing_file():
    with pytest.raises(ProgramError, match="cannot read"):
        parse_file("/no/such/file.uop")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_program_errors(data):
    with contextlib.suppress(ProgramError):
        parse_bytes(data, "fuzz.uop")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "push_int 1",
                "add",
                "jz L",
                "L:",
                "halt",
                "ret",
                ".func f",
                "call f",
                "load 0",
                '"x"',
                'print_str "a"',
                "0x",
                "1e999",
                ".args 1",
                "arg 0",
                "dup",
                "jump L",
                ".memory 5",
                "mload",
                "'a'",
                "print_float 3",
            ]
        ),
        max_size=30,
    )
)
def test_random_token_soup_raises_only_program_errors(lines):
    with contextlib.suppress(ProgramError):
        parse(".func main\n" + "\n".join(lines) + "\n", "fuzz.uop")


@pytest.mark.parametrize("path", sorted((ROOT / "bench" / "programs").glob("*.uop")), ids=lambda p: p.stem)
def test_printing_round_trips(path):
    program = parse_file(path)
    again = parse(format_program(program), program.filename)
    strip = lambda p: [(i.op, i.a, i.b) for i in p.code]  # noqa: E731 - lines differ, semantics not
    assert strip(again) == strip(program)
    assert again.functions == tuple(
        f.__class__(**{**f.__dict__, "line": g.line}) for f, g in zip(program.functions, again.functions, strict=True)
    )


def test_builder_makes_the_same_program_as_text():
    b = ProgramBuilder("built")
    b.set_args(1).func("main", locals=1)
    b.emit("arg", 0).emit("store", 0).label("loop")
    b.emit("load", 0).emit("jz", "done").emit("load", 0).emit("print_int").emit("print_str", "\n")
    b.emit("load", 0).emit("push_int", 1).emit("sub").emit("store", 0).emit("jump", "loop")
    b.label("done").emit("halt")
    built = b.build()
    from .runners import agree

    assert agree(built, [3]).output == b"3\n2\n1\n"
    text = format_program(built)
    assert [(i.op, i.a) for i in parse(text).code] == [(i.op, i.a) for i in built.code]


def test_builder_collects_errors():
    b = ProgramBuilder("built")
    b.func("main").emit("push_int", "seven").emit("nope").emit("halt")
    with pytest.raises(ProgramError) as info:
        b.build()
    assert sorted(d.message for d in info.value.diagnostics) == [
        "push_int: expected an integer, got 'seven'",
        "unknown op 'nope'",
    ]
