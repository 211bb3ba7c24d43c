"""The Python reference interpreter: the oracle for every other engine.

It is written from the semantics in stencils/bodies.h but shares no code
with C, so a mistake in one shows up as a disagreement with the other.
Values are Python ints (kept in int64 range) and floats; an op that finds a
value of the other type reinterprets its bits, as the C union does.

Each instruction becomes a closure with its operand bound, made by its
op's builder in SEMANTICS; the loop is `pc = code[pc](pc)`.  Halting and
runtime errors leave by exception.

Independence is the point: this module reads the op table (names, operand
kinds), the status and error codes (jit.vmdef) and the int64 wrap
(jit.lang.ir), but no semantics from C.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

from ..errors import JitError
from ..limits import MAX_CALL_DEPTH, STACK_SLOTS
from ..vmdef import VM_ERROR, VM_HALTED, VM_HOT, VM_HOT_CALL, VM_RECORDED, VM_RUNNING
from .ir import (
    INT64_MAX,
    INT64_MIN,
    OPS,
    Function,
    Instr,
    Program,
    bits_float,
    call_need,
    call_shape,
    float_bits,
    wrap64,
)
from .optable import OpInfo
from .outcome import (
    ERR_CALL_DEPTH,
    ERR_DIV_ZERO,
    ERR_MEM_RANGE,
    ERR_STACK_OVERFLOW,
    ERROR,
    HALTED,
    Outcome,
    Prepared,
    error_message,
    format_float,
)

wrap = wrap64  # integer arithmetic wraps to int64


def as_int(v: int | float) -> int:
    return float_bits(v) if isinstance(v, float) else v


def as_float(v: int | float) -> float:
    return v if isinstance(v, float) else bits_float(v)


def fdiv(a: float, b: float) -> float:
    if b == 0.0:
        if a != a or a == 0.0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def fsqrt(x: float) -> float:
    return math.nan if x < 0.0 else math.sqrt(x)


def ftoi(x: float) -> int:
    if x != x:
        return 0
    if x >= 9223372036854775808.0:
        return INT64_MAX
    if x <= -9223372036854775808.0:
        return INT64_MIN
    return int(x)


def idiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return wrap(q if (a < 0) == (b < 0) else -q)


def imod(a: int, b: int) -> int:
    r = abs(a) % abs(b)
    return -r if a < 0 else r


class _Stop(Exception):
    def __init__(self, pc: int, code: int = 0) -> None:
        self.pc, self.code = pc, code


# Where tier 1 stopped: the status codes of stencils/vm.h.
RUNNING, HALT, FAIL, HOT, RECORDED, HOT_CALL = VM_RUNNING, VM_HALTED, VM_ERROR, VM_HOT, VM_RECORDED, VM_HOT_CALL


class _Hot(Exception):
    """Tier 1 reached a loop header whose back-edge counter ran out (HOT), or
    called a function whose call counter did (HOT_CALL)."""

    def __init__(self, pc: int, status: int = HOT) -> None:
        self.pc, self.status = pc, status


_INT_BINARY: dict[str, Callable[[int, int], int]] = {
    "add": lambda a, b: wrap(a + b),
    "sub": lambda a, b: wrap(a - b),
    "mul": lambda a, b: wrap(a * b),
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
    "shl": lambda a, b: wrap(a << (b & 63)),
    "shr": lambda a, b: a >> (b & 63),
    "eq": lambda a, b: int(a == b),
    "ne": lambda a, b: int(a != b),
    "lt": lambda a, b: int(a < b),
    "le": lambda a, b: int(a <= b),
    "gt": lambda a, b: int(a > b),
    "ge": lambda a, b: int(a >= b),
}
_FLOAT_BINARY: dict[str, Callable[[float, float], float | int]] = {
    "fadd": lambda a, b: a + b,
    "fsub": lambda a, b: a - b,
    "fmul": lambda a, b: a * b,
    "fdiv": fdiv,
    "feq": lambda a, b: int(a == b),
    "fne": lambda a, b: int(a != b),
    "flt": lambda a, b: int(a < b),
    "fle": lambda a, b: int(a <= b),
    "fgt": lambda a, b: int(a > b),
    "fge": lambda a, b: int(a >= b),
}
_FLOAT_UNARY: dict[str, Callable[[float], float | int]] = {
    "fneg": lambda x: -x,
    "fsqrt": fsqrt,
    "ftoi": ftoi,
}


# -- the semantics, one builder per op ------------------------------------------
#
# A builder takes the machine, the instruction's operands and its position,
# and returns the handler: a closure that runs the instruction and returns
# the next position.  SEMANTICS maps every op a program can contain (the op
# table's ops that are not TRACE_ONLY) to its builder; a test checks that
# none is missing.


class Slots(Protocol):
    """Memory slots: a list, or the emulator's memory seen through one."""

    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> int | float: ...
    def __setitem__(self, i: int, value: int | float) -> None: ...


Handler = Callable[[int], int]
Builder = Callable[["Machine", int, int, int], Handler]


def _int_binary(f: Callable[[int, int], int]) -> Builder:
    def build(m: Machine, a: int, b: int, pc: int) -> Handler:
        push, pop = m.stack.append, m.stack.pop

        def h(pc):
            y = pop()
            x = pop()
            if x.__class__ is float or y.__class__ is float:
                x, y = as_int(x), as_int(y)
            push(f(x, y))
            return pc + 1

        return h

    return build


def _float_binary(g: Callable[[float, float], float | int]) -> Builder:
    def build(m: Machine, a: int, b: int, pc: int) -> Handler:
        push, pop = m.stack.append, m.stack.pop

        def h(pc):
            y = pop()
            x = pop()
            if x.__class__ is not float or y.__class__ is not float:
                x, y = as_float(x), as_float(y)
            push(g(x, y))
            return pc + 1

        return h

    return build


def _float_unary(u: Callable[[float], float | int]) -> Builder:
    def build(m: Machine, a: int, b: int, pc: int) -> Handler:
        push, pop = m.stack.append, m.stack.pop

        def h(pc):
            push(u(as_float(pop())))
            return pc + 1

        return h

    return build


def _constant(value_of: Callable[[Machine, int], int | float]) -> Builder:
    """An op that pushes a value fixed when the program is loaded."""

    def build(m: Machine, a: int, b: int, pc: int) -> Handler:
        value, push = value_of(m, a), m.stack.append

        def h(pc):
            push(value)
            return pc + 1

        return h

    return build


def _load(m: Machine, a: int, b: int, pc: int) -> Handler:
    S, push = m.stack, m.stack.append

    def h(pc):
        push(S[m.fp + a])
        return pc + 1

    return h


def _store(m: Machine, a: int, b: int, pc: int) -> Handler:
    S, pop = m.stack, m.stack.pop

    def h(pc):
        S[m.fp + a] = pop()
        return pc + 1

    return h


def _dup(m: Machine, a: int, b: int, pc: int) -> Handler:
    S, push = m.stack, m.stack.append

    def h(pc):
        push(S[-1])
        return pc + 1

    return h


def _swap(m: Machine, a: int, b: int, pc: int) -> Handler:
    S = m.stack

    def h(pc):
        S[-1], S[-2] = S[-2], S[-1]
        return pc + 1

    return h


def _over(m: Machine, a: int, b: int, pc: int) -> Handler:
    S, push = m.stack, m.stack.append

    def h(pc):
        push(S[-2])
        return pc + 1

    return h


def _drop(m: Machine, a: int, b: int, pc: int) -> Handler:
    pop = m.stack.pop

    def h(pc):
        pop()
        return pc + 1

    return h


def _division(divide: Callable[[int, int], int], on_minus_one: Callable[[int], int]) -> Builder:
    """div and mod: a zero divisor is a runtime error; -1 is special-cased
    (INT64_MIN / -1 wraps, INT64_MIN % -1 is 0)."""

    def build(m: Machine, a: int, b: int, pc: int) -> Handler:
        S, push = m.stack, m.stack.append

        def h(pc):
            y = as_int(S[-1])
            if y == 0:
                raise _Stop(pc, ERR_DIV_ZERO)
            x = as_int(S[-2])
            del S[-2:]
            push(on_minus_one(x) if y == -1 else divide(x, y))
            return pc + 1

        return h

    return build


def _neg(m: Machine, a: int, b: int, pc: int) -> Handler:
    push, pop = m.stack.append, m.stack.pop

    def h(pc):
        push(wrap(-as_int(pop())))
        return pc + 1

    return h


def _itof(m: Machine, a: int, b: int, pc: int) -> Handler:
    push, pop = m.stack.append, m.stack.pop

    def h(pc):
        push(float(as_int(pop())))
        return pc + 1

    return h


def _mload(m: Machine, a: int, b: int, pc: int) -> Handler:
    S, mem = m.stack, m.memory

    def h(pc):
        i = as_int(S[-1])
        if not 0 <= i < len(mem):
            raise _Stop(pc, ERR_MEM_RANGE)
        S[-1] = mem[i]
        return pc + 1

    return h


def _mstore(m: Machine, a: int, b: int, pc: int) -> Handler:
    S, mem = m.stack, m.memory

    def h(pc):
        i = as_int(S[-2])
        if not 0 <= i < len(mem):
            raise _Stop(pc, ERR_MEM_RANGE)
        mem[i] = S[-1]
        del S[-2:]
        return pc + 1

    return h


def _branch(taken: Callable[[int | float], bool] | None) -> Builder:
    """jump (taken None: always), jz, jnz.  In tier 1 a backward one is a
    back-edge, which counts down its loop header's counter."""

    def build(m: Machine, a: int, b: int, pc: int) -> Handler:
        pop = m.stack.pop
        go = m._back_edge(a) if a <= pc and m.counters is not None else (lambda: a)
        if taken is None:
            return lambda pc: go()
        return lambda pc: go() if taken(pop()) else pc + 1

    return build


def _call(m: Machine, a: int, b: int, pc: int) -> Handler:
    S = m.stack
    (params, extra), need = call_shape(b), call_need(b)

    def h(pc):
        if len(m.frames) >= MAX_CALL_DEPTH:
            raise _Stop(pc, ERR_CALL_DEPTH)
        if need > STACK_SLOTS - len(S):
            raise _Stop(pc, ERR_STACK_OVERFLOW)
        m.frames.append((pc + 1, m.fp, 0))
        m.fp = len(S) - params
        S.extend([0] * extra)
        if m.counting:  # tier 1: a hot function is compiled whole
            counters = m.call_counters
            assert counters is not None
            counters[a] -= 1
            if counters[a] <= 0:
                raise _Hot(a, HOT_CALL)
        return a

    return h


def _ret(m: Machine, a: int, b: int, pc: int) -> Handler:
    S = m.stack

    def h(pc):
        ret_pc, caller_fp, _ = m.frames.pop()
        results = S[len(S) - a :] if a else []
        del S[m.fp :]
        S.extend(results)
        m.fp = caller_fp
        return ret_pc

    return h


def _halt(m: Machine, a: int, b: int, pc: int) -> Handler:
    def h(pc):
        raise _Stop(pc)

    return h


def _output(render: Callable[[Machine, int, int | float], bytes]) -> Builder:
    """print_int, print_float, print_byte: pop a value, append its bytes."""

    def build(m: Machine, a: int, b: int, pc: int) -> Handler:
        pop = m.stack.pop

        def h(pc):
            m.out += render(m, a, pop())
            return pc + 1

        return h

    return build


def _print_str(m: Machine, a: int, b: int, pc: int) -> Handler:
    text = m.program.strings[a]

    def h(pc):
        m.out += text
        return pc + 1

    return h


SEMANTICS: dict[str, Builder] = {
    **{name: _int_binary(f) for name, f in _INT_BINARY.items()},
    **{name: _float_binary(g) for name, g in _FLOAT_BINARY.items()},
    **{name: _float_unary(u) for name, u in _FLOAT_UNARY.items()},
    "push_int": _constant(lambda m, a: a),
    "push_float": _constant(lambda m, a: bits_float(a)),
    "arg": _constant(lambda m, a: m.args[a]),
    "load": _load,
    "store": _store,
    "dup": _dup,
    "swap": _swap,
    "over": _over,
    "drop": _drop,
    "div": _division(idiv, lambda x: wrap(-x)),
    "mod": _division(imod, lambda x: 0),
    "neg": _neg,
    "itof": _itof,
    "mload": _mload,
    "mstore": _mstore,
    "jump": _branch(None),
    "jz": _branch(lambda v: as_int(v) == 0),
    "jnz": _branch(lambda v: as_int(v) != 0),
    "call": _call,
    "ret": _ret,
    "halt": _halt,
    "print_int": _output(lambda m, a, v: b"%d" % as_int(v)),
    "print_float": _output(lambda m, a, v: format_float(as_float(v), a)),
    "print_byte": _output(lambda m, a, v: bytes((as_int(v) & 0xFF,))),
    "print_str": _print_str,
}


class Machine:
    """One run of one program: the stack, memory, frames and output."""

    args: list[int]
    memory: Slots

    def __init__(
        self,
        program: Program,
        args: Sequence[int],
        memory: Slots | None = None,
        counters: list[int] | None = None,
        call_counters: list[int] | None = None,
    ) -> None:
        """`memory` may be any sequence of slots (the emulator passes its own);
        `counters` (one per IR position) makes this a tier 1 that counts
        back-edges and stops at hot loop headers; `call_counters` (the same
        shape) counts calls and stops at hot functions."""
        self.program = program
        self.args = list(args)
        self.stack: list[int | float] = [0] * program.main.locals
        self.memory = [0] * program.memory if memory is None else memory
        # (return pc, caller's fp, machine code to return to: kept for traces)
        self.frames: list[tuple[int, int, int]] = []
        self.fp = 0
        self.out = bytearray()
        self.counters = counters
        self.call_counters = call_counters if call_counters is not None else counters
        self.counting = counters is not None
        self.status, self.pc, self.error = RUNNING, 0, 0
        self.ops = 0  # micro-ops executed (tier 1 and recording)
        self.code = [self._compile(pc) for pc in range(len(program.code))]

    def _compile(self, pc: int) -> Handler:
        ins = self.program.code[pc]
        build = SEMANTICS.get(ins.info.mnemonic)
        if build is None:
            raise JitError(
                f"op {ins.info.mnemonic} has no reference semantics: add a builder to SEMANTICS in "
                "jit/lang/interp.py (docs/ops.md, step 3)"
            )
        return build(self, ins.a, ins.b, pc)

    def _back_edge(self, header: int) -> Callable[[], int]:
        """Taking a back-edge in tier 1 counts down the header's counter."""
        counters = self.counters
        assert counters is not None

        def taken() -> int:
            if self.counting:
                counters[header] -= 1
                if counters[header] <= 0:
                    raise _Hot(header)
            return header

        return taken

    def run(self, pc: int = 0) -> Outcome:
        """Run to the end (the `py` engine)."""
        self.interpret(pc)
        return self.outcome()

    def interpret(self, pc: int) -> int:
        """Run from pc until the program ends or (as tier 1) a loop gets hot."""
        code = self.code
        n = 0
        try:
            while True:
                pc = code[pc](pc)
                n += 1
        except _Stop as stop:
            self._stopped(stop)
        except _Hot as hot:
            self.status, self.pc = hot.status, hot.pc
            n += 1
        self.ops += n
        return self.status

    def _stopped(self, stop: _Stop) -> None:
        self.status = FAIL if stop.code else HALT
        self.pc, self.error = stop.pc, stop.code
        self.ops += 1

    def record(self, start: int, limit: int, heads: set[int] | dict[int, object]) -> list[int]:
        """Execute the path from `start` and return its IR positions, stopping
        (before executing) back at start, at a trace head, after `limit`
        instructions or at halt, and (after executing) at a ret out of the
        starting frame."""
        code, program = self.code, self.program.code
        pcs: list[int] = []
        depth, pc, returned = 0, start, False
        self.counting = False
        try:
            while True:
                if returned or (pcs and (pc == start or pc in heads)):
                    break
                name = program[pc].info.name
                if len(pcs) >= limit or name == "HALT":
                    break
                returned = name == "RET" and depth == 0
                depth += (name == "CALL") - (name == "RET")
                pcs.append(pc)
                pc = code[pc](pc)
            self.status, self.pc = RECORDED, pc
        except _Stop as stop:
            self._stopped(stop)
        finally:
            self.counting = self.counters is not None
        self.ops += len(pcs) - (self.status == FAIL)
        return pcs

    def outcome(self) -> Outcome:
        if self.status == HALT:
            return Outcome(bytes(self.out), HALTED, self.pc)
        if self.status != FAIL:
            raise RuntimeError(f"the interpreter is not done (status {self.status})")
        top = tuple(as_int(v) for v in self.stack[-2:])
        return Outcome(bytes(self.out), ERROR, self.pc, error_message(self.program, self.error, self.pc, top))


def prepare_py(program: Program, args: Sequence[int]) -> Prepared:
    machine = Machine(program, args)
    done: list[Outcome] = []
    return Prepared(lambda: done.append(machine.run()), lambda: done[0])


def run_py(program: Program, args: Sequence[int]) -> Outcome:
    return Machine(program, args).run()


_HALT_OP = next(o.opcode for o in OPS if o.name == "HALT")


def evaluate(op: OpInfo, values: Sequence[int | float]) -> int | float | None:
    """One op applied to constant operands by the reference semantics (what
    constant folding computes with: jit.codegen.passes); None when the op
    would fail (a runtime error) or is not a pure function of its operands."""
    if not op.pure or op.pops != len(values):
        return None
    code = (Instr(op.opcode, 0, 0, 1), Instr(_HALT_OP, 0, 0, 1))
    program = Program("fold", code, (Function("main", 0, 0, 0, 0, 2),))
    m = Machine(program, [])
    m.stack[:] = list(values)
    try:
        m.code[0](0)
    except _Stop:
        return None
    return m.stack[-1] if len(m.stack) == 1 else None
