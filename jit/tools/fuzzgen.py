"""Random valid programs that always terminate, for differential testing.

A hypothesis strategy draws a program as a small tree of statements --
typed expressions stored to locals or memory, printed or dropped; if/else;
counted loops (nested at most twice) whose branches can change direction
halfway through; calls of a helper function -- and the builder turns it into
a verified Program.  Loops count down fixed trip counts, so every program
ends.  Runtime errors come on purpose: divisors and memory indices are
drawn from values that include 0 and out-of-range ones.

Types are kept apart (int locals 0-1 and memory 0-3, float locals 2-3 and
memory 4-7), so no engine ever reinterprets the bits of a NaN that another
engine computed with a different sign or payload.

Memory is also reached through local 6, a base set once at the start of
each function and never stored again: `load 6; push_int c; add; mload`
(and mstore), with c worked out when the program is built so that the
index is an int slot or out of range.  That is what bounds-check hoisting
(jit.codegen.passes, hoist-bounds) rewrites, in and out of range.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ..lang.ir import INT64_MAX, INT64_MIN, Program, ProgramBuilder

MEMORY = 8
INDICES = [0, 1, 2, 3, 0, 1, 2, 3, -1, MEMORY]  # int slots mostly, and -1 and 8: out of range
BASE = 6  # the local holding a function's base index (BASES)
BASES = [0, 1, 2, 3, -5, MEMORY]
INT_CONSTS = [0, 1, -1, 2, 3, 7, 63, 64, 100, INT64_MAX, INT64_MIN, -9, 1 << 32]
FLOAT_CONSTS = [0.0, -0.0, 1.0, -1.5, 0.1, 3.25, 1e300, -1e-300, float("inf"), float("-inf"), float("nan"), 2.0]
INT_OPS = ["add", "sub", "mul", "and", "or", "xor", "shl", "shr", "eq", "ne", "lt", "le", "gt", "ge", "div", "mod"]
FLOAT_OPS = ["fadd", "fsub", "fmul", "fdiv"]
FLOAT_CMPS = ["feq", "fne", "flt", "fle", "fgt", "fge"]


def int_expr(depth: int = 0):
    leaves = st.one_of(
        st.tuples(st.just("const"), st.sampled_from(INT_CONSTS)),
        st.tuples(st.just("const"), st.integers(INT64_MIN, INT64_MAX)),
        st.tuples(st.just("local"), st.integers(0, 1)),
        st.tuples(st.just("arg"), st.integers(0, 1)),
        st.tuples(st.just("counter"), st.integers(0, 1)),
        st.tuples(st.just("mload"), st.sampled_from([-1, 0, 1, 2, 3, MEMORY])),  # -1 and 8: out of range
        st.tuples(st.just("mload_at"), st.sampled_from(INDICES)),  # (through the base in local 6)
    )
    if depth >= 3:
        return leaves
    sub = st.deferred(lambda: int_expr(depth + 1))
    fsub = st.deferred(lambda: float_expr(depth + 1))
    return st.one_of(
        leaves,
        st.tuples(st.sampled_from(INT_OPS), sub, sub),
        st.tuples(st.just("neg"), sub),
        st.tuples(st.just("ftoi"), fsub),
        st.tuples(st.sampled_from(FLOAT_CMPS), fsub, fsub),
        st.tuples(st.just("call"), sub, sub),
    )


def float_expr(depth: int = 0):
    leaves = st.one_of(
        st.tuples(st.just("fconst"), st.sampled_from(FLOAT_CONSTS)),
        st.tuples(st.just("fconst"), st.floats(allow_nan=False, width=64)),
        st.tuples(st.just("flocal"), st.integers(2, 3)),
        st.tuples(st.just("fmload"), st.integers(4, MEMORY - 1)),
    )
    if depth >= 3:
        return leaves
    sub = st.deferred(lambda: float_expr(depth + 1))
    isub = st.deferred(lambda: int_expr(depth + 1))
    return st.one_of(
        leaves,
        st.tuples(st.sampled_from(FLOAT_OPS), sub, sub),
        st.tuples(st.sampled_from(["fneg", "fsqrt"]), sub),
        st.tuples(st.just("itof"), isub),
    )


def statement(depth: int = 0):
    simple = st.one_of(
        st.tuples(st.just("store"), st.integers(0, 1), int_expr()),
        st.tuples(st.just("fstore"), st.integers(2, 3), float_expr()),
        st.tuples(st.just("mstore"), st.integers(-1, 3), int_expr()),
        st.tuples(st.just("mstore_at"), st.sampled_from(INDICES), int_expr()),
        # slot a + slot b -> slot c, all three through the base.
        st.tuples(st.just("sum_at"), *[st.sampled_from(INDICES)] * 3),
        st.tuples(st.just("fmstore"), st.integers(4, MEMORY), float_expr()),
        st.tuples(st.just("print_int"), int_expr()),
        st.tuples(st.just("print_float"), st.integers(0, 17), float_expr()),
        st.tuples(st.just("print_byte"), int_expr()),
        st.tuples(st.just("print_str"), st.sampled_from(["a", "\n", "x=", ""])),
        st.tuples(st.just("drop"), int_expr()),
        # A value stored and read straight back (what store-to-load forwarding rewrites).
        st.tuples(st.just("store_print"), st.integers(0, 1), int_expr()),
    )
    if depth >= 2:
        return simple
    body = st.lists(st.deferred(lambda: statement(depth + 1)), min_size=1, max_size=4)
    return st.one_of(
        simple,
        st.tuples(st.just("if"), int_expr(), body, body),
        # A loop of n passes whose inner branch flips after `flip` passes.
        st.tuples(st.just("loop"), st.integers(1, 30), st.integers(0, 30), body, body),
    )


programs = st.tuples(
    st.lists(statement(), min_size=1, max_size=8),
    st.lists(statement(2), max_size=3),  # the helper's body
    st.booleans(),  # does the helper recurse without end?
    st.sampled_from(BASES),  # the base index in local 6
)


class _Emitter:
    def __init__(self, b: ProgramBuilder, base: int) -> None:
        self.b, self.labels, self.loops, self.base = b, 0, 0, base

    def at(self, index: int) -> None:
        """Memory slot `index` as the base in local 6 plus a constant."""
        self.b.emit("load", BASE).emit("push_int", index - self.base).emit("add")

    def label(self) -> str:
        self.labels += 1
        return f"L{self.labels}"

    def expr(self, e) -> None:
        b, kind = self.b, e[0]
        if kind == "const":
            b.emit("push_int", e[1])
        elif kind == "fconst":
            b.emit("push_float", e[1])
        elif kind in ("local", "flocal"):
            b.emit("load", e[1])
        elif kind == "arg":
            b.emit("arg", e[1])
        elif kind == "counter":
            b.emit("load", 4 + e[1])
        elif kind in ("mload", "fmload"):
            b.emit("push_int", e[1]).emit("mload")
        elif kind == "mload_at":
            self.at(e[1])
            b.emit("mload")
        elif kind in ("neg", "ftoi", "fneg", "fsqrt", "itof"):
            self.expr(e[1])
            b.emit(kind)
        elif kind == "call":
            self.expr(e[1])
            self.expr(e[2])
            b.emit("call", "helper")
        else:
            self.expr(e[1])
            self.expr(e[2])
            b.emit(kind)

    def stmt(self, s, depth: int) -> None:
        b, kind = self.b, s[0]
        if kind in ("store", "fstore"):
            self.expr(s[2])
            b.emit("store", s[1])
        elif kind == "store_print":
            self.expr(s[2])
            b.emit("store", s[1]).emit("load", s[1]).emit("print_int")
        elif kind in ("mstore", "fmstore"):
            b.emit("push_int", s[1])
            self.expr(s[2])
            b.emit("mstore")
        elif kind == "mstore_at":
            self.at(s[1])
            self.expr(s[2])
            b.emit("mstore")
        elif kind == "sum_at":
            self.at(s[3])
            self.at(s[1])
            b.emit("mload")
            self.at(s[2])
            b.emit("mload").emit("add").emit("mstore")
        elif kind == "print_float":
            self.expr(s[2])
            b.emit("print_float", s[1])
        elif kind in ("print_int", "print_byte", "drop"):
            self.expr(s[1])
            b.emit(kind)
        elif kind == "print_str":
            if s[1]:
                b.emit("print_str", s[1])
        elif kind == "if":
            other, end = self.label(), self.label()
            self.expr(s[1])
            b.emit("jz", other)
            for t in s[2]:
                self.stmt(t, depth)
            b.emit("jump", end).label(other)
            for t in s[3]:
                self.stmt(t, depth)
            b.label(end)
        elif kind == "loop":
            _, n, flip, first, second = s
            counter = 4 + depth  # locals 4 and 5 count the loops down
            top, other, join, end = self.label(), self.label(), self.label(), self.label()
            b.emit("push_int", n).emit("store", counter).label(top)
            b.emit("load", counter).emit("jz", end)
            b.emit("load", counter).emit("push_int", flip).emit("gt").emit("jz", other)
            for t in first:
                self.stmt(t, depth + 1)
            b.emit("jump", join).label(other)
            for t in second:
                self.stmt(t, depth + 1)
            b.label(join)
            b.emit("load", counter).emit("push_int", 1).emit("sub").emit("store", counter)
            b.emit("jump", top).label(end)


def build(drawn, filename: str = "fuzz.uop") -> Program:
    """The Program for one drawn example (verified like any other)."""
    main, helper, runaway, base = drawn
    b = ProgramBuilder(filename)
    b.set_memory(MEMORY).set_args(2).func("main", locals=BASE + 1)
    e = _Emitter(b, base)
    b.emit("push_int", base).emit("store", BASE)
    for s in main:
        e.stmt(s, 0)
    b.emit("halt")
    # helper(x, y) -> x + y, after its own statements; or, on purpose, endless recursion.
    b.func("helper", params=2, locals=BASE + 1, results=1)
    b.emit("push_int", base).emit("store", BASE)
    for s in helper:
        e.stmt(s, 1)
    if runaway:
        b.emit("load", 0).emit("load", 1).emit("call", "helper").emit("ret")
    else:
        b.emit("load", 0).emit("load", 1).emit("add").emit("ret")
    return b.build()
