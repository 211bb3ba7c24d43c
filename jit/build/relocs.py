"""The relocation table, read from stencils/relocs.def (its one copy; C includes the same file).

One row per type: its ELF number and machine, how it is encoded, its
range, whether it can be a branch, and for GOT references what the hole
becomes once the stencil has its own GOT entry.  Everything else that
needs to know about relocations derives from these rows: the build's
number lookup, the patch functions (jit.codegen.patch), the trampoline and
tail clean-up rules, the C stitcher's numbering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import cache

from ..paths import STENCILS_DIR

_ROW = re.compile(r"^RELOC\(([^)]*)\)\s*$", re.M)


class Encoding(Enum):
    """How a relocation writes S + A (and P) into the bytes (relocs.def says each)."""

    ABS = "ABS"
    ABS_U = "ABS_U"
    ABS_S = "ABS_S"
    ABS_X = "ABS_X"
    PREL = "PREL"
    PREL_S = "PREL_S"
    PREL_X = "PREL_X"
    MOVW = "MOVW"
    ADR = "ADR"
    ADRP = "ADRP"
    LO12 = "LO12"
    BRANCH = "BRANCH"
    GOT = "GOT"


class Branch(Enum):
    """Whether a hole of the type can be a branch displacement, and which kind."""

    NONE = "NONE"
    MAYBE = "MAYBE"  # x86-64 rel32: a branch when the opcode is jmp, jcc or call
    COND = "COND"  # AArch64 b.cond, cbz, tbz
    JUMP = "JUMP"  # AArch64 b
    CALL = "CALL"  # AArch64 bl


@dataclass(frozen=True)
class Relocation:
    name: str
    number: int  # the ELF r_type
    machine: str  # pyelftools' e_machine: EM_X86_64, EM_AARCH64
    encoding: Encoding
    bits: int
    shift: int
    branch: Branch
    becomes: str | None  # GOT references: the relocation the hole gets instead
    index: int  # the row's position: the C stitcher's number for it

    @property
    def reach(self) -> int:
        """For a branch: how far it reaches either way, in bytes."""
        return 1 << (self.bits - 1)


def parse_relocs(text: str, filename: str = "relocs.def") -> tuple[Relocation, ...]:
    rows: list[Relocation] = []
    for m in _ROW.finditer(text):
        parts = [p.strip() for p in m.group(1).split(",")]
        line = text.count("\n", 0, m.start()) + 1
        try:
            name, number, machine, encoding, bits, shift, branch, becomes = parts
            row = Relocation(
                name,
                int(number),
                f"EM_{machine}",
                Encoding(encoding),
                int(bits),
                int(shift),
                Branch(branch),
                None if becomes == "NONE" else becomes,
                len(rows),
            )
        except ValueError as e:
            raise ValueError(f"{filename}:{line}: malformed relocation row ({e}): {m.group(0)}") from None
        rows.append(row)
    return tuple(rows)


@cache
def table() -> tuple[Relocation, ...]:
    path = STENCILS_DIR / "relocs.def"
    return parse_relocs(path.read_text(), str(path))


@cache
def by_name() -> dict[str, Relocation]:
    return {r.name: r for r in table()}


@cache
def by_number(machine: str) -> dict[int, Relocation]:
    """The rows of one machine (pyelftools' e_machine) by ELF number."""
    return {r.number: r for r in table() if r.machine == machine}


def get(name: str) -> Relocation:
    try:
        return by_name()[name]
    except KeyError:
        raise KeyError(f"{name} is not in stencils/relocs.def") from None


@cache
def abs64(machine: str) -> str:
    """The machine's 64-bit absolute type: the one GOT entries we make carry."""
    return next(r.name for r in table() if r.machine == machine and r.encoding is Encoding.ABS and r.bits == 64)


def short_branch(name: str) -> bool:
    """A branch whose reach a large body of code may exceed (AArch64 b, b.cond,
    cbz, tbz): layout keeps trampolines ready for it.  (Calls reach only
    helpers, which always go through a trampoline slot.)"""
    r = get(name)
    return r.branch in (Branch.COND, Branch.JUMP) and r.reach < 1 << 31
