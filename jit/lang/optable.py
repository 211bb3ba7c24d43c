"""The op table, read from stencils/ops.def so that C and Python share one copy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ..paths import STENCILS_DIR
from .table import parse_helpers, parse_table

OPERAND_KINDS = frozenset({"NONE", "INT", "FLOAT", "LOCAL", "ARG", "LABEL", "FUNC", "PREC", "STRING", "COUNT"})
FLAGS = frozenset(
    {"JUMP", "BRANCH", "TERMINATOR", "CALL", "RETURN", "ERROR", "HELPER", "TRACE_ONLY", "FUSED", "FLOATS"}
)
HOW_COMPILED = frozenset({"FLOATS"})  # flags that say how an op's stencils are built, not what it does
BLOCK_ENDS = frozenset({"JUMP", "CALL", "RETURN", "TERMINATOR"})  # the flags of ops that end a basic block

_COLUMNS = re.compile(r"^(\w+), (-?\d+), (-?\d+), (\w+), ([\w|]+)$")  # mnemonic, pops, pushes, operand, flags


@dataclass(frozen=True)
class OpInfo:
    """One row of the op table."""

    opcode: int
    name: str  # C name, e.g. PUSH_INT
    mnemonic: str  # text-format name, e.g. push_int
    pops: int  # -1: depends on the operand
    pushes: int
    operand: str
    flags: frozenset[str]

    def has(self, flag: str) -> bool:
        return flag in self.flags

    @property
    def pure(self) -> bool:
        """A function of its operands alone: no operand, no flag (nothing that
        jumps, fails, calls or prints), popped values in, one value out
        (what constant folding may compute ahead: jit.codegen.passes)."""
        return self.operand == "NONE" and not self.flags - HOW_COMPILED and self.pushes == 1 and self.pops >= 1


def parse_optable(text: str, filename: str = "ops.def") -> tuple[OpInfo, ...]:
    """Parse the OP(...) lines (jit.lang.table) and their five columns;
    anything malformed is a ValueError with file:line."""
    ops: list[OpInfo] = []
    for row in parse_table(text, filename):
        lineno = row.line
        m = _COLUMNS.match(", ".join(row.columns))
        if len(row.columns) != 5 or not m:
            raise ValueError(f"{filename}:{lineno}: malformed op table entry: {row.text}")
        name = row.name
        mnemonic, pops, pushes, operand, flag_text = m.groups()
        flags = frozenset() if flag_text == "0" else frozenset(flag_text.split("|"))
        if operand not in OPERAND_KINDS:
            raise ValueError(f"{filename}:{lineno}: unknown operand kind {operand}")
        if not flags <= FLAGS:
            raise ValueError(f"{filename}:{lineno}: unknown flags {sorted(flags - FLAGS)}")
        ops.append(OpInfo(len(ops), name, mnemonic, int(pops), int(pushes), operand, flags))
    return tuple(ops)


@cache
def optable() -> tuple[OpInfo, ...]:
    path = STENCILS_DIR / "ops.def"
    return parse_optable(path.read_text(), str(path))


@cache
def helper_names() -> tuple[str, ...]:
    """The helpers listed in stencils/helpers.h (the X(name) lines of HELPERS)."""
    path = STENCILS_DIR / "helpers.h"
    return parse_helpers(path.read_text(), str(path))
