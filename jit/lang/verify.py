"""The verifier: every engine may assume what it checks.

For each function it walks every path from the entry and checks that the
stack depth is the same wherever paths join, never goes below zero, and is
exactly the function's result count at each `ret`; that control never falls
off the end of a function; and that the entry function does not return.
It also records how deep each function's stack gets, which CALL needs to
check for stack overflow before it enters a frame.  First, it checks what
the parser and the builder guarantee anyway, for a Program made by hand:
functions that tile the code, and every operand in range for its kind.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import Diagnostic, ProgramError
from ..limits import MAX_ARGS, MAX_FUNCTION_STACK, MAX_LOCALS, MAX_MEMORY_SLOTS, MAX_PRECISION
from .ir import INT64_MAX, INT64_MIN, OPS, Function, Instr, Program, call_info


def _effect(program: Program, f: Function, ins: Instr, by_start: dict[int, Function]) -> tuple[int, int]:
    op = ins.info
    if op.has("CALL"):
        callee = by_start[ins.a]
        return callee.params, callee.results
    if op.has("RETURN"):
        return f.results, 0
    return op.pops, op.pushes


def _successors(pc: int, ins: Instr) -> list[int]:
    op = ins.info
    if op.has("TERMINATOR"):
        return [ins.a] if op.has("JUMP") else []
    if op.has("BRANCH"):
        return [pc + 1, ins.a]
    return [pc + 1]


def _verify_function(
    program: Program, f: Function, by_start: dict[int, Function], errors: list[Diagnostic]
) -> Function:
    def error(pc: int, message: str) -> None:
        ins = program.code[pc]
        errors.append(Diagnostic(program.filename, ins.line, ins.col, message))

    depth: dict[int, int] = {}
    deepest = 0
    work = [(f.start, 0)]
    reported: set[int] = set()
    while work:
        pc, d = work.pop()
        if pc in depth:
            if depth[pc] != d and pc not in reported:
                reported.add(pc)
                error(pc, f"stack depth differs where paths join: {depth[pc]} on one path, {d} on another")
            continue
        depth[pc] = d
        ins = program.code[pc]
        op = ins.info
        pops, pushes = _effect(program, f, ins, by_start)
        if op.has("RETURN"):
            if f is program.main:
                error(pc, "ret in the entry function: end the program with halt")
                continue
            if d != f.results:
                error(pc, f"ret with {d} values on the stack; function {f.name!r} returns {f.results}")
                continue
        if d < pops:
            error(pc, f"stack underflow: {op.mnemonic} needs {pops} values, the stack holds {d}")
            continue
        nd = d - pops + pushes
        deepest = max(deepest, nd)
        for succ in _successors(pc, ins):
            if succ >= f.end:
                error(pc, f"control falls off the end of function {f.name!r} (end it with jump, ret or halt)")
            else:
                work.append((succ, nd))
    if deepest > MAX_FUNCTION_STACK:
        errors.append(Diagnostic(program.filename, f.line, 1, f"function {f.name!r} needs a stack of {deepest} slots"))
    return replace(f, max_stack=deepest)


def _check_shape(program: Program, errors: list[Diagnostic]) -> bool:
    """Functions that tile the code, with sane frames; and every operand in
    range for its kind.  The parser and the builder never make anything
    else, but a Program can be made by hand, and the C engines trust it."""

    def bad(line: int, col: int, what: str) -> None:
        errors.append(Diagnostic(program.filename, line, col, what))

    n = len(program.code)
    if not program.functions or program.functions[0].start != 0:
        bad(1, 1, "the first function (main) must start at instruction 0")
        return False
    ends = [0]
    for f in program.functions:
        if f.start != ends[-1] or not f.start < f.end <= n:
            bad(f.line, 1, f"function {f.name!r} does not follow the one before it (or is empty)")
            return False
        if not 0 <= f.params <= f.locals <= MAX_LOCALS or not 0 <= f.results <= MAX_LOCALS:
            bad(f.line, 1, f"function {f.name!r}: bad frame shape")
        ends.append(f.end)
    if ends[-1] != n:
        bad(1, 1, "instructions after the last function")
    if not 0 <= program.nargs <= MAX_ARGS or not 0 <= program.memory <= MAX_MEMORY_SLOTS:
        bad(1, 1, "argument count or memory size out of range")
    starts = {f.start for f in program.functions}
    for f in program.functions:
        for pc in range(f.start, f.end):
            ins = program.code[pc]
            if not 0 <= ins.op < len(OPS) or OPS[ins.op].has("TRACE_ONLY"):
                bad(ins.line, ins.col, f"opcode {ins.op} is not an op a program can hold")
                continue
            kind, a = OPS[ins.op].operand, ins.a
            ok = {
                "LOCAL": 0 <= a < f.locals,
                "ARG": 0 <= a < program.nargs,
                "LABEL": f.start <= a < f.end,
                "FUNC": a in starts,
                "STRING": 0 <= a < len(program.strings),
                "PREC": 0 <= a <= MAX_PRECISION,
            }.get(kind, INT64_MIN <= a <= INT64_MAX)
            if not ok or not INT64_MIN <= ins.b <= INT64_MAX:
                bad(ins.line, ins.col, f"{OPS[ins.op].mnemonic}: operand {a} out of range for a {kind.lower()}")
    return not errors


def verify(program: Program) -> Program:
    """Check the program; return it with frame shapes filled in, or raise ProgramError."""
    errors: list[Diagnostic] = []
    if not _check_shape(program, errors):
        raise ProgramError(errors)
    by_start = {f.start: f for f in program.functions}
    functions = tuple(_verify_function(program, f, by_start, errors) for f in program.functions)
    if errors:
        raise ProgramError(errors)
    by_start = {f.start: f for f in functions}
    code = []
    for pc, ins in enumerate(program.code):
        if ins.info.has("CALL"):
            callee = by_start[ins.a]
            extra = callee.locals - callee.params
            ins = replace(ins, b=call_info(callee.params, extra, extra + callee.max_stack))
        elif ins.info.has("RETURN"):
            ins = replace(ins, a=program.function_at(pc).results)
        code.append(ins)
    return replace(program, code=tuple(code), functions=functions)
