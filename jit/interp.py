"""The Python reference interpreter: the oracle for every other engine.

It is written from the semantics in stencils/bodies.h but shares no code
with C, so a mistake in one shows up as a disagreement with the other.
Values are Python ints (kept in int64 range) and floats; an op that finds a
value of the other type reinterprets its bits, as the C union does.

Each instruction becomes a closure with its operand bound; the loop is
`pc = code[pc](pc)`.  Halting and runtime errors leave by exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable, MutableSequence, Sequence

from .ir import INT64_MAX, INT64_MIN, Program, bits_float, call_shape, float_bits, wrap64
from .limits import MAX_CALL_DEPTH, STACK_SLOTS
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
from .vmdef import VM_ERROR, VM_HALTED, VM_HOT, VM_HOT_CALL, VM_RECORDED, VM_RUNNING

wrap = wrap64  # integer arithmetic wraps to int64


def as_int(v: int | float) -> int:
    return float_bits(v) if v.__class__ is float else v  # type: ignore[arg-type]


def as_float(v: int | float) -> float:
    return v if v.__class__ is float else bits_float(v)  # type: ignore[arg-type]


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


class Machine:
    """One run of one program: the stack, memory, frames and output."""

    def __init__(
        self,
        program: Program,
        args: Sequence[int],
        memory: MutableSequence[int | float] | None = None,
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

    def _compile(self, pc: int) -> Callable[[int], int]:
        ins = self.program.code[pc]
        name, a, b = ins.info.mnemonic, ins.a, ins.b
        S = self.stack
        push, pop = S.append, S.pop
        mem = self.memory

        if name in _INT_BINARY:
            f = _INT_BINARY[name]

            def h(pc):
                y = pop()
                x = pop()
                if x.__class__ is float or y.__class__ is float:
                    x, y = as_int(x), as_int(y)
                push(f(x, y))
                return pc + 1

            return h
        if name in _FLOAT_BINARY:
            g = _FLOAT_BINARY[name]

            def h(pc):
                y = pop()
                x = pop()
                if x.__class__ is not float or y.__class__ is not float:
                    x, y = as_float(x), as_float(y)
                push(g(x, y))
                return pc + 1

            return h
        if name in _FLOAT_UNARY:
            u = _FLOAT_UNARY[name]

            def h(pc):
                push(u(as_float(pop())))
                return pc + 1

            return h
        if name == "push_int":

            def h(pc):
                push(a)
                return pc + 1

            return h
        if name == "push_float":
            value = bits_float(a)

            def h(pc):
                push(value)
                return pc + 1

            return h
        if name == "load":

            def h(pc):
                push(S[self.fp + a])
                return pc + 1

            return h
        if name == "store":

            def h(pc):
                S[self.fp + a] = pop()
                return pc + 1

            return h
        if name == "arg":
            value = self.args[a]

            def h(pc):
                push(value)
                return pc + 1

            return h
        if name == "dup":

            def h(pc):
                push(S[-1])
                return pc + 1

            return h
        if name == "swap":

            def h(pc):
                S[-1], S[-2] = S[-2], S[-1]
                return pc + 1

            return h
        if name == "over":

            def h(pc):
                push(S[-2])
                return pc + 1

            return h
        if name == "drop":

            def h(pc):
                pop()
                return pc + 1

            return h
        if name in ("div", "mod"):
            op = idiv if name == "div" else imod

            def h(pc):
                y = as_int(S[-1])
                if y == 0:
                    raise _Stop(pc, ERR_DIV_ZERO)
                x = as_int(S[-2])
                del S[-2:]
                push(wrap(-x) if y == -1 and name == "div" else 0 if y == -1 else op(x, y))
                return pc + 1

            return h
        if name == "neg":

            def h(pc):
                push(wrap(-as_int(pop())))
                return pc + 1

            return h
        if name == "itof":

            def h(pc):
                push(float(as_int(pop())))
                return pc + 1

            return h
        if name == "mload":

            def h(pc):
                i = as_int(S[-1])
                if not 0 <= i < len(mem):
                    raise _Stop(pc, ERR_MEM_RANGE)
                S[-1] = mem[i]
                return pc + 1

            return h
        if name == "mstore":

            def h(pc):
                i = as_int(S[-2])
                if not 0 <= i < len(mem):
                    raise _Stop(pc, ERR_MEM_RANGE)
                mem[i] = S[-1]
                del S[-2:]
                return pc + 1

            return h
        if name in ("jump", "jz", "jnz") and a <= pc and self.counters is not None:
            return self._counted_jump(name, a)
        if name == "jump":
            return lambda pc: a
        if name == "jz":

            def h(pc):
                return a if as_int(pop()) == 0 else pc + 1

            return h
        if name == "jnz":

            def h(pc):
                return a if as_int(pop()) != 0 else pc + 1

            return h
        if name == "call":
            (params, extra), need = call_shape(b), b >> 32

            def h(pc):
                if len(self.frames) >= MAX_CALL_DEPTH:
                    raise _Stop(pc, ERR_CALL_DEPTH)
                if need > STACK_SLOTS - len(S):
                    raise _Stop(pc, ERR_STACK_OVERFLOW)
                self.frames.append((pc + 1, self.fp, 0))
                self.fp = len(S) - params
                S.extend([0] * extra)
                if self.counting:  # tier 1: a hot function is compiled whole
                    counters = self.call_counters
                    counters[a] -= 1
                    if counters[a] <= 0:
                        raise _Hot(a, HOT_CALL)
                return a

            return h
        if name == "ret":

            def h(pc):
                ret_pc, caller_fp, _ = self.frames.pop()
                results = S[len(S) - a :] if a else []
                del S[self.fp :]
                S.extend(results)
                self.fp = caller_fp
                return ret_pc

            return h
        if name == "halt":

            def h(pc):
                raise _Stop(pc)

            return h
        if name == "print_int":

            def h(pc):
                self.out += b"%d" % as_int(pop())
                return pc + 1

            return h
        if name == "print_float":

            def h(pc):
                self.out += format_float(as_float(pop()), a)
                return pc + 1

            return h
        if name == "print_byte":

            def h(pc):
                self.out.append(as_int(pop()) & 0xFF)
                return pc + 1

            return h
        if name == "print_str":
            text = self.program.strings[a]

            def h(pc):
                self.out += text
                return pc + 1

            return h
        raise AssertionError(f"no reference semantics for {name}")

    def _counted_jump(self, name: str, a: int) -> Callable[[int], int]:
        """A back-edge: taking it counts down the header's counter."""
        pop, counters = self.stack.pop, self.counters
        assert counters is not None

        def taken() -> int:
            if self.counting:
                counters[a] -= 1
                if counters[a] <= 0:
                    raise _Hot(a)
            return a

        if name == "jump":
            return lambda pc: taken()
        if name == "jz":
            return lambda pc: taken() if as_int(pop()) == 0 else pc + 1
        return lambda pc: taken() if as_int(pop()) != 0 else pc + 1

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
