"""The micro-op IR: plain data for programs, and a builder to make them.

A program is one flat list of instructions; functions are ranges of it.
Operands are resolved to integers (labels to instruction indices, functions
to their entry index, floats to their IEEE bits), which is what every engine
consumes.  Programs are made by the text parser (jit.lang.uop) or from Python
with ProgramBuilder; both end in ProgramBuilder.build(), which verifies.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from ..errors import Diagnostic, ProgramError
from ..limits import MAX_ARGS, MAX_LOCALS, MAX_MEMORY_SLOTS, MAX_PRECISION
from ..vmdef import constant
from .optable import OpInfo, optable

OPS: tuple[OpInfo, ...] = optable()
BY_MNEMONIC: dict[str, OpInfo] = {op.mnemonic: op for op in OPS}
BY_NAME: dict[str, OpInfo] = {op.name: op for op in OPS}
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UINT64_MASK = (1 << 64) - 1


def wrap64(x: int) -> int:
    """x as an int64: two's-complement wrap (the signed value with x's low 64 bits)."""
    x &= UINT64_MASK
    return x - (1 << 64) if x >> 63 else x


def u64(x: int) -> int:
    """x's low 64 bits, as an unsigned value."""
    return x & UINT64_MASK


class _Invalid:
    """An operand the parser already reported: resolving it reports nothing more."""

    def __repr__(self) -> str:
        return "<invalid operand>"


INVALID = _Invalid()


def float_bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def bits_float(i: int) -> float:
    return struct.unpack("<d", struct.pack("<q", i))[0]


_FIELD, _NEED = constant("CALL_FIELD_BITS"), constant("CALL_NEED_SHIFT")


def call_info(params: int, extra_locals: int, need: int) -> int:
    """CALL's second operand, packed as stencils/vm.h unpacks it."""
    return params | (extra_locals << _FIELD) | (need << _NEED)


def call_shape(info: int) -> tuple[int, int]:
    """The parameters and extra locals of a packed call_info."""
    mask = (1 << _FIELD) - 1
    return info & mask, (info >> _FIELD) & mask


def call_need(info: int) -> int:
    """The stack slots a packed call_info's callee needs."""
    return info >> _NEED


@dataclass(frozen=True)
class Instr:
    op: int  # opcode (index into the op table)
    a: int = 0  # first operand, resolved
    b: int = 0  # second operand (CALL: packed frame shape)
    line: int = 0
    col: int = 0

    @property
    def info(self) -> OpInfo:
        return OPS[self.op]


@dataclass(frozen=True)
class Function:
    name: str
    params: int
    locals: int  # including the params
    results: int
    start: int  # index of its first instruction
    end: int  # one past its last
    line: int = 0
    max_stack: int = 0  # deepest operand stack it needs (set by the verifier)


@dataclass(frozen=True)
class Program:
    filename: str
    code: tuple[Instr, ...]
    functions: tuple[Function, ...]  # functions[0] is main
    memory: int = 0  # slots of memory
    nargs: int = 0
    strings: tuple[bytes, ...] = ()

    @property
    def main(self) -> Function:
        return self.functions[0]

    def function_at(self, pc: int) -> Function:
        for f in self.functions:
            if f.start <= pc < f.end:
                return f
        raise IndexError(pc)

    def where(self, pc: int) -> str:
        """FILE:LINE of an instruction, for runtime error messages."""
        return f"{self.filename}:{self.code[pc].line}"


@dataclass
class _Pending:
    """An instruction whose operand may still name a label or a function."""

    op: OpInfo
    operand: object
    line: int
    col: int


@dataclass
class _Func:
    name: str
    params: int
    locals: int
    results: int
    line: int
    col: int
    body: list[_Pending] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)


class ProgramBuilder:
    """Make a program from Python, or collect what the parser read.

    Errors are collected, not raised one by one, so that a file with many
    mistakes reports many; build() raises them all as one ProgramError.
    """

    def __init__(self, filename: str = "<builder>") -> None:
        self.filename = filename
        self.memory = 0
        self.nargs = 0
        self.funcs: list[_Func] = []
        self.strings: list[bytes] = []
        self.errors: list[Diagnostic] = []

    def error(self, line: int, col: int, message: str) -> None:
        self.errors.append(Diagnostic(self.filename, line, col, message))

    def set_memory(self, slots: int, line: int = 0, col: int = 0) -> ProgramBuilder:
        if not 0 <= slots <= MAX_MEMORY_SLOTS:
            self.error(line, col, f"memory size {slots} is out of range (0 to {MAX_MEMORY_SLOTS} slots)")
        else:
            self.memory = slots
        return self

    def set_args(self, count: int, line: int = 0, col: int = 0) -> ProgramBuilder:
        if not 0 <= count <= MAX_ARGS:
            self.error(line, col, f"argument count {count} is out of range (0 to {MAX_ARGS})")
        else:
            self.nargs = count
        return self

    def func(
        self,
        name: str,
        params: int = 0,
        locals: int | None = None,
        results: int = 0,
        line: int = 0,
        col: int = 0,
    ) -> ProgramBuilder:
        nlocals = params if locals is None else locals
        if any(f.name == name for f in self.funcs):
            self.error(line, col, f"function {name!r} is defined twice")
        if not (0 <= params <= nlocals <= MAX_LOCALS):
            self.error(line, col, f"function {name!r}: need 0 <= params <= locals <= {MAX_LOCALS}")
            params, nlocals = 0, max(0, min(nlocals, MAX_LOCALS))
        if not 0 <= results <= MAX_LOCALS:
            self.error(line, col, f"function {name!r}: results must be 0 to {MAX_LOCALS}")
            results = 0
        self.funcs.append(_Func(name, params, nlocals, results, line, col))
        return self

    def label(self, name: str, line: int = 0, col: int = 0) -> ProgramBuilder:
        if not self.funcs:
            self.error(line, col, f"label {name!r} outside any function (start one with .func)")
            return self
        f = self.funcs[-1]
        if name in f.labels:
            self.error(line, col, f"label {name!r} is defined twice in function {f.name!r}")
        f.labels[name] = len(f.body)
        return self

    def emit(self, mnemonic: str, operand: object = None, line: int = 0, col: int = 0) -> ProgramBuilder:
        op = BY_MNEMONIC.get(mnemonic)
        if op is None:
            self.error(line, col, f"unknown op {mnemonic!r}")
            return self
        if not self.funcs:
            self.error(line, col, f"instruction {mnemonic!r} outside any function (start one with .func)")
            return self
        if op.has("TRACE_ONLY"):
            self.error(line, col, f"{mnemonic!r} exists only in traces, not in programs")
            return self
        if op.operand == "STRING" and isinstance(operand, bytes | str):
            data = operand.encode() if isinstance(operand, str) else operand
            if data not in self.strings:
                self.strings.append(data)
            operand = self.strings.index(data)
        self.funcs[-1].body.append(_Pending(op, operand, line, col))
        return self

    # -- resolution ---------------------------------------------------------

    def _operand(self, f: _Func, p: _Pending, starts: dict[str, int], base: int) -> int:
        kind, v, name = p.op.operand, p.operand, p.op.mnemonic

        def bad(message: str) -> int:
            self.error(p.line, p.col, f"{name}: {message}")
            return 0

        if v is INVALID:
            return 0

        if kind == "NONE" or kind == "COUNT":
            return 0 if v is None else bad("takes no operand")
        if v is None:
            return bad(f"needs an operand ({kind.lower()})")
        if kind == "FLOAT":
            if isinstance(v, bool) or not isinstance(v, int | float):
                return bad(f"expected a float, got {v!r}")
            if isinstance(v, int) and abs(v) > 2**1023:
                return bad("float literal out of range")
            x = float(v)
            if math.isinf(x) and isinstance(p.operand, int):
                return bad("float literal out of range")
            return float_bits(x)
        if kind in ("LABEL", "FUNC"):
            if not isinstance(v, str):
                return bad(f"expected a {kind.lower()} name, got {v!r}")
            if kind == "LABEL":
                if v not in f.labels:
                    return bad(f"undefined label {v!r} in function {f.name!r}")
                return base + f.labels[v]
            if v not in starts:
                return bad(f"undefined function {v!r}")
            if v == self.funcs[0].name:
                return bad(f"{v!r} is the entry function and cannot be called")
            return starts[v]
        if isinstance(v, bool) or not isinstance(v, int):
            return bad(f"expected an integer, got {v!r}")
        limits = {
            "INT": (INT64_MIN, INT64_MAX, "integer literal"),
            "LOCAL": (0, f.locals - 1, f"local index (function {f.name!r} has {f.locals} locals)"),
            "ARG": (0, self.nargs - 1, f"argument index (the program declares .args {self.nargs})"),
            "PREC": (0, MAX_PRECISION, "precision"),
            "STRING": (0, len(self.strings) - 1, "string index"),
        }
        lo, hi, what = limits[kind]
        if not lo <= v <= hi:
            return bad(f"{what} {v} out of range")
        return v

    def build(self) -> Program:
        """Resolve names, verify, and return the program (or raise ProgramError)."""
        from .verify import verify  # verify needs the Program type defined here

        if not self.funcs:
            self.error(1, 1, "no functions: a program starts with `.func main`")
            raise ProgramError(self.errors)
        main = self.funcs[0]
        if main.params or main.results:
            self.error(main.line, main.col, "the first function is the entry: it takes no params and no results")
        starts: dict[str, int] = {}
        pos = 0
        for f in self.funcs:
            starts.setdefault(f.name, pos)
            pos += len(f.body)
        code: list[Instr] = []
        functions: list[Function] = []
        ends = [g.line for g in self.funcs[1:]] + [1 << 60]
        for f, end in zip(self.funcs, ends, strict=True):
            base = len(code)
            for p in f.body:
                a = self._operand(f, p, starts, base)
                code.append(Instr(p.op.opcode, a, 0, p.line, p.col))
            # An empty function is worth a word only if nothing in it was reported already.
            if not f.body and not any(f.line <= e.line < end for e in self.errors):
                self.error(f.line, f.col, f"function {f.name!r} is empty")
            functions.append(Function(f.name, f.params, f.locals, f.results, base, len(code), f.line))
        if self.errors:
            raise ProgramError(self.errors)
        program = Program(self.filename, tuple(code), tuple(functions), self.memory, self.nargs, tuple(self.strings))
        return verify(program)
