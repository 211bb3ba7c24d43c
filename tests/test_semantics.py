"""Each op's semantics on edge values, against values known independently,
and every engine against the others."""

from __future__ import annotations

import pytest

from .runners import agree

MIN, MAX = -(1 << 63), (1 << 63) - 1


def ints(op: str, a: int, b: int | None = None) -> str:
    operands = f" push_int {a}\n" + (f" push_int {b}\n" if b is not None else "")
    return f".func main\n{operands} {op}\n print_int\n halt\n"


def floats(op: str, a: float, b: float | None = None, precision: int = 3, result: str = "print_float") -> str:
    operands = f" push_float {a!r}\n" + (f" push_float {b!r}\n" if b is not None else "")
    printer = f"print_float {precision}" if result == "print_float" else "print_int"
    return f".func main\n{operands} {op}\n {printer}\n halt\n"


INT_CASES = [
    ("add", MAX, 1, MIN),
    ("sub", MIN, 1, MAX),
    ("mul", 1 << 32, 1 << 32, 0),
    ("mul", MAX, 2, -2),
    ("div", -7, 2, -3),
    ("div", 7, -2, -3),
    ("div", MIN, -1, MIN),
    ("div", -7, -1, 7),
    ("mod", -7, 2, -1),
    ("mod", 7, -2, 1),
    ("mod", MIN, -1, 0),
    ("shl", 1, 63, MIN),
    ("shl", 1, 64, 1),
    ("shl", 3, -1, MIN),
    ("shr", -8, 1, -4),
    ("shr", -1, 63, -1),
    ("shr", MIN, 64, MIN),
    ("shr", 8, 2, 2),
    ("and", -1, 5, 5),
    ("or", 12, 3, 15),
    ("xor", -1, 0, -1),
    ("lt", -1, 0, 1),
    ("ge", MIN, MAX, 0),
    ("eq", 5, 5, 1),
    ("ne", 5, 5, 0),
    ("le", 5, 5, 1),
    ("gt", 0, MIN, 1),
]


@pytest.mark.parametrize(("op", "a", "b", "expected"), INT_CASES)
def test_int_ops(op, a, b, expected):
    assert agree(ints(op, a, b)).output == str(expected).encode()


def test_neg_wraps():
    assert agree(ints("neg", MIN)).output == str(MIN).encode()
    assert agree(ints("neg", 5)).output == b"-5"


FLOAT_CASES = [
    ("fdiv", 1.0, 0.0, "inf"),
    ("fdiv", -1.0, 0.0, "-inf"),
    ("fdiv", 1.0, -0.0, "-inf"),
    ("fdiv", 0.0, 0.0, "nan"),
    ("fadd", 0.1, 0.2, "0.300"),
    ("fsub", 1.0, 1.0, "0.000"),
    ("fmul", 1e308, 10.0, "inf"),
]


@pytest.mark.parametrize(("op", "a", "b", "expected"), FLOAT_CASES)
def test_float_ops(op, a, b, expected):
    assert agree(floats(op, a, b)).output == expected.encode()


@pytest.mark.parametrize(
    ("op", "a", "expected"),
    [
        ("fsqrt", -1.0, "nan"),
        ("fsqrt", -0.0, "-0.000"),
        ("fsqrt", 2.0, "1.414"),
        ("fsqrt", float("inf"), "inf"),
        ("fneg", 0.0, "-0.000"),
        ("fneg", float("-inf"), "inf"),
    ],
)
def test_float_unary(op, a, expected):
    assert agree(floats(op, a)).output == expected.encode()


@pytest.mark.parametrize(
    ("a", "expected"),
    [
        (float("nan"), 0),
        (1e300, MAX),
        (-1e300, MIN),
        (-2.9, -2),
        (2.9, 2),
        (9.223372036854775808e18, MAX),
        (-9.223372036854775808e18, MIN),
        (float("inf"), MAX),
    ],
)
def test_ftoi_saturates(a, expected):
    assert agree(floats("ftoi", a, result="print_int")).output == str(expected).encode()


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("feq", float("nan"), float("nan"), 0),
        ("fne", float("nan"), float("nan"), 1),
        ("flt", float("nan"), 1.0, 0),
        ("fge", float("nan"), 1.0, 0),
        ("fle", -0.0, 0.0, 1),
        ("fgt", float("inf"), 1e308, 1),
    ],
)
def test_float_compares(op, a, b, expected):
    assert agree(floats(op, a, b, result="print_int")).output == str(expected).encode()


def test_itof_rounds_to_nearest():
    src = ".func main\n push_int 9223372036854775807\n itof\n print_float 1\n halt\n"
    assert agree(src).output == b"9223372036854775808.0"
    src = ".func main\n push_int 9007199254740993\n itof\n print_float 0\n halt\n"
    assert agree(src).output == b"9007199254740992"


def test_print_float_rounds_half_to_even():
    src = ".func main\n push_float 2.5\n print_float 0\n push_float 3.5\n print_float 0\n halt\n"
    assert agree(src).output == b"24"


def test_bits_are_shared_between_ints_and_floats():
    """A slot is 64 bits: reading a float as an int gives its IEEE bits, and back."""
    src = ".func main\n push_float 1.0\n print_int\n push_int 4611686018427387904\n print_float 1\n halt\n"
    assert agree(src).output == b"46071824188000174082.0"
    src = (
        ".memory 1\n.func main\n push_int 0\n push_float -2.0\n mstore\n"
        " push_int 0\n mload\n push_int 1\n add\n print_int\n halt\n"
    )
    assert agree(src).output == str(-4611686018427387904 + 1).encode()


def test_stack_shuffles():
    src = """.func main
 push_int 1
 push_int 2
 swap
 print_int
 print_int
 push_int 3
 push_int 4
 over
 print_int
 drop
 dup
 print_int
 print_int
 halt
"""
    assert agree(src).output == b"12" + b"3" + b"33"


def test_output_ops():
    src = '.func main\n push_int 321\n print_byte\n print_str "b\\x00c\\n"\n push_int -5\n print_int\n halt\n'
    assert agree(src).output == b"Ab\x00c\n-5"


def test_calls_pass_params_and_zero_locals():
    src = """.func main
    push_int 10
    push_int 3
    call f
    print_int
    print_str " "
    print_int
    halt
.func f params=2 locals=4 results=2
    load 2
    load 3
    add
    print_int
    load 0
    load 1
    sub
    load 0
    load 1
    mul
    ret
"""
    # f(10, 3) prints its zeroed locals' sum, then returns (7, 30): 30 is on top.
    assert agree(src).output == b"030 7"


def test_program_arguments():
    src = ".args 2\n.func main\n arg 1\n arg 0\n sub\n print_int\n halt\n"
    assert agree(src, [5, 12]).output == b"7"
