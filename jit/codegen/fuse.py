"""Superinstructions: common runs of steps replaced by one stencil.

The patterns are the ones the bundled programs' traces are made of most
(counted with jit.tools.benchmark's trace collection): counter increments, pairs
of loads, adding a constant, float arithmetic on locals and sums of
products, whose values otherwise cross between the general and the float
registers around every float op, the increment of a local kept in a
register (jit.codegen.passes, registers), and a comparison with the branch or guard
on it (every loop's test), which then compares and branches without making
the 0/1 in between.  A run is fused only where nothing jumps into
its middle, and every step index the other steps hold (jump targets, exits,
return points) is mapped to the new numbering.  A fused step keeps the IR
position of the run's first instruction; none of the fused ops can fail,
so no error ever needs a position inside one.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..lang.ir import wrap64
from ..vmdef import constant
from .step import Step, entries, renumber


def _neg(k: int) -> int:
    """-k, wrapped to int64 like the C: sub k is add -k."""
    return wrap64(-k)


FLOAT = ("FADD", "FSUB", "FMUL", "FDIV")  # each has <op>_LL (two locals) and <op>_L (one local) forms
# The integer comparisons, each with its opposite (vm.h's COMPARES order),
# and the branches on a comparison's 0/1: (the fused op's prefix, whether the
# branch tests for 0, so that the fused op tests the opposite comparison).
COMPARES = {"EQ": "NE", "NE": "EQ", "LT": "GE", "LE": "GT", "GT": "LE", "GE": "LT"}
_BRANCHES = {"JNZ": ("J", False), "JZ": ("J", True), "GUARD_NONZERO": ("GUARD_", False), "GUARD_ZERO": ("GUARD_", True)}
_IN_REGISTER = {f"LOAD_R{j}": j for j in range(constant("LOCAL_REGS"))}  # (the registers pass's loads)
_HEADS = frozenset({"LOAD", "STORE", "PUSH_INT", "FMUL", *COMPARES, *_IN_REGISTER})  # the ops a run can start with


def _match(steps: Sequence[Step], i: int) -> tuple[Step, int] | None:
    """The superinstruction for the run starting at i, and its length."""
    s = steps[i]
    if s.op not in _HEADS:
        return None
    n = len(steps)
    op1 = steps[i + 1].op if i + 1 < n else None
    op2 = steps[i + 2].op if i + 2 < n else None
    if s.op in _IN_REGISTER:  # (a local in a register: only the increment is fused)
        j = _IN_REGISTER[s.op]
        if op1 == "PUSH_INT" and op2 in ("ADD", "SUB") and i + 3 < n and steps[i + 3].op == f"STORE_R{j}":
            k = steps[i + 1].operand0 if op2 == "ADD" else _neg(steps[i + 1].operand0)
            return Step(f"INC_R{j}", k, 0, s.position), 4
        return None
    if s.op == "LOAD" and op1 == "PUSH_INT" and op2 in ("ADD", "SUB"):
        k = steps[i + 1].operand0 if op2 == "ADD" else _neg(steps[i + 1].operand0)
        if i + 3 < n and steps[i + 3].op == "STORE" and steps[i + 3].operand0 == s.operand0:
            return Step("INC_LOCAL", s.operand0, k, s.position), 4
        return Step("LOAD_ADDK", s.operand0, k, s.position), 3
    if s.op == "LOAD" and op1 == "LOAD" and op2 in FLOAT:
        return Step(f"{op2}_LL", s.operand0, steps[i + 1].operand0, s.position), 3
    if s.op == "LOAD" and op1 == "LOAD":
        return Step("LOAD2", s.operand0, steps[i + 1].operand0, s.position), 2
    if s.op == "LOAD" and op1 in FLOAT:
        return Step(f"{op1}_L", s.operand0, 0, s.position), 2
    if s.op == "STORE" and op1 == "LOAD":
        return Step("STORE_LOAD", s.operand0, steps[i + 1].operand0, s.position), 2
    if s.op == "PUSH_INT" and op1 in ("ADD", "SUB"):
        k = s.operand0 if op1 == "ADD" else _neg(s.operand0)
        return Step("ADDK", k, 0, s.position), 2
    if s.op == "FMUL" and op1 == "FADD":
        return Step("FMUL_FADD", 0, 0, s.position), 2
    if s.op in COMPARES and op1 in _BRANCHES:  # the branch, testing the comparison itself
        b = steps[i + 1]
        prefix, on_zero = _BRANCHES[op1]
        cond = COMPARES[s.op] if on_zero else s.op
        fields = (b.target, b.exit, b.target_address, b.continue_to, b.operand2, b.operand3)
        return Step(prefix + cond, b.operand0, b.operand1, s.position, *fields), 2
    return None


def fuse(steps: Sequence[Step]) -> tuple[list[Step], list[int]]:
    """The fused steps, and for each old step index its new one."""
    starts = entries(steps)
    out: list[Step] = []
    where = [0] * (len(steps) + 1)
    i = 0
    while i < len(steps):
        found = _match(steps, i) if steps[i].op in _HEADS else None
        if found and not any(k in starts for k in range(i + 1, i + found[1])):
            fused, n = found
        else:
            fused, n = steps[i], 1
        for k in range(i, i + n):
            where[k] = len(out)
        out.append(fused)
        i += n
    where[len(steps)] = len(out)
    return renumber(out, where), where


def expand(op: str, a: int, b: int) -> list[tuple[str, int]]:
    """The ops a superinstruction stands for (validate runs them as the reference)."""
    return {
        "LOAD2": [("LOAD", a), ("LOAD", b)],
        "INC_LOCAL": [("LOAD", a), ("PUSH_INT", b), ("ADD", 0), ("STORE", a)],
        "LOAD_ADDK": [("LOAD", a), ("PUSH_INT", b), ("ADD", 0)],
        "ADDK": [("PUSH_INT", a), ("ADD", 0)],
        "STORE_LOAD": [("STORE", a), ("LOAD", b)],
        **{f"{f}_LL": [("LOAD", a), ("LOAD", b), (f, 0)] for f in FLOAT},
        **{f"{f}_L": [("LOAD", a), (f, 0)] for f in FLOAT},
        "FMUL_FADD": [("FMUL", 0), ("FADD", 0)],
        **{f"J{c}": [(c, 0), ("JNZ", a)] for c in COMPARES},
        **{f"GUARD_{c}": [(c, 0), ("JZ", a)] for c in COMPARES},  # (leaves where a jz would jump)
        **{
            f"INC_R{j}": [(f"LOAD_R{j}", 0), ("PUSH_INT", a), ("ADD", 0), (f"STORE_R{j}", 0)]
            for j in _IN_REGISTER.values()
        },
    }[op]
