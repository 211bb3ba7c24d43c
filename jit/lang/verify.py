"""The verifier: every engine may assume what it checks.

For each function it walks every path from the entry and checks that the
stack depth is the same wherever paths join, never goes below zero, and is
exactly the function's result count at each `ret`; that control never falls
off the end of a function; and that the entry function does not return.
It also records how deep each function's stack gets, which CALL needs to
check for stack overflow before it enters a frame.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import Diagnostic, ProgramError
from ..limits import MAX_FUNCTION_STACK
from .ir import Function, Instr, Program, call_info


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


def verify(program: Program) -> Program:
    """Check the program; return it with frame shapes filled in, or raise ProgramError."""
    errors: list[Diagnostic] = []
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
