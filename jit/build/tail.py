"""Tail clean-up: drop a stencil's final jump to its continuation.

Stencils are laid out in execution order, so a final `jmp _JIT_CONTINUE`
jumps to the very next byte and can go.  When a stencil ends in
`jcc _JIT_CONTINUE; jmp X` (a conditional branch, compiled "backwards"), the
condition is inverted to `j!cc X` so that the continuation falls through.
An inversion is made only when no other branch in the stencil lands on the
jump it deletes.  Each change is recorded as a note, since the bytes then
differ on purpose from the object file.  The rules are the target's
(Target.tail_rule, in jit/targets/); this module has what they share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import capstone

from .stencils import Hole, HoleKind

if TYPE_CHECKING:
    from ..targets import Target


def branch_targets(target: Target, code: bytes, holes: list[Hole]) -> set[int] | None:
    """Offsets that direct, unrelocated branches in `code` land on.

    None if the code does not decode cleanly (data in code), in which case
    the caller must not assume anything about who jumps where.
    """
    hole_offsets = {h.offset for h in holes}
    found: set[int] = set()
    end = 0
    for insn in target.disassembler.disasm(code, 0):
        end = insn.address + insn.size
        if not (insn.group(capstone.CS_GRP_JUMP) or insn.group(capstone.CS_GRP_CALL)):
            continue
        if any(insn.address <= h < end for h in hole_offsets):
            continue  # the displacement is a hole: not an internal target
        imms = [op.imm for op in insn.operands if op.type == capstone.CS_OP_IMM]
        if imms:
            found.add(imms[-1])
    return found if end == len(code) else None


def hole_at(holes: list[Hole], offset: int) -> Hole | None:
    return next((h for h in holes if h.offset == offset), None)


def is_continue(h: Hole | None, relocs: set[str] | frozenset[str], addend: int) -> bool:
    """Whether h is a jump to _JIT_CONTINUE through one of `relocs`, with `addend`."""
    return (
        h is not None
        and h.kind is HoleKind.CONTINUE
        and h.symbol == "_JIT_CONTINUE"
        and (h.reloc in relocs and h.addend == addend)
    )


def clean_tail(target: Target, code: bytes, holes: list[Hole]) -> tuple[bytes, list[Hole], list[str]]:
    """Apply the target's rule until it changes nothing; returns code, holes, notes."""
    notes: list[str] = []
    while True:
        code, holes, more = target.tail_rule(code, holes)
        if not more:
            return code, holes, notes
        notes += more
