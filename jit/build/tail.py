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

from dataclasses import replace
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


COLD_ALIGN = 16  # where the cold path starts in the stencil's data
REMOVED = "removed the final"  # how a tail rule's note begins when it only drops a final jump


def _local_target(insn, holes: list[Hole]) -> int | None:
    """Where a direct, unrelocated jump or call lands (None for anything else)."""
    if not (insn.group(capstone.CS_GRP_JUMP) or insn.group(capstone.CS_GRP_CALL)):
        return None
    if any(insn.address <= h.offset < insn.address + insn.size for h in holes):
        return None
    imms = [op.imm for op in insn.operands if op.type == capstone.CS_OP_IMM]
    return imms[-1] if imms else None


def split_cold(
    target: Target, code: bytes, holes: list[Hole], data: bytes, data_holes: list[Hole]
) -> tuple[bytes, list[Hole], bytes, list[Hole], list[str]]:
    """Hot/cold splitting: move what follows the earliest unconditional jump to
    _JIT_CONTINUE (else the last conditional one) out of line: the blocks
    clang laid out after the straight line (a failed bounds check,
    a zero divisor, a guard that leaves, a saturating corner; bodies.h marks
    them UNLIKELY), into the stencil's data, which the region places after
    all the code.  The hot path then ends in that jump, which the
    tail clean-up removes (or, when it is conditional, whose condition is
    flipped to branch to the cold part), so it falls through to the next stencil.

    Branches between the two parts become holes (into the data, or back into
    the code); on x86-64 a short branch grows to its rel32 form.  Nothing
    changes unless it is safe: the cold part must end in a return or an
    unconditional jump (a part that falls off the end is the hot path), every
    branch that crosses must take a hole, a local branch whose distance
    changes (when one grows) must still reach, and no instruction may address
    memory relative to itself without a hole (it would not follow a move).
    """
    unchanged: tuple[bytes, list[Hole], bytes, list[Hole], list[str]] = (code, holes, data, data_holes, [])
    md = target.disassembler
    insns = list(md.disasm(code, 0))
    if sum(i.size for i in insns) != len(code) or not target.ends_path(code, insns[-1].address):
        return unchanged  # (does not decode cleanly, or falls off the end: then the end is the hot path)
    if any(target.pc_relative(i) and not any(i.address <= h.offset < i.address + i.size for h in holes) for i in insns):
        return unchanged
    jumps = [j for j in target.continue_jumps(code, holes) if j[1] < len(code)]
    # The earliest unconditional jump: all after it is entered by branches
    # only; else the last conditional one, flipped.
    chosen = next((j for j in jumps if not j[2]), None) or next((j for j in reversed(jumps) if j[2]), None)
    if chosen is None:
        return unchanged
    jump_at, cold, conditional = chosen
    hot = [i for i in insns if i.address < cold]
    tail = [i for i in insns if i.address >= cold]
    if not hot or sum(i.size for i in hot) != cold:
        return unchanged
    # A cold part that is one jump elsewhere is not moved: what branches to it
    # gets that jump's destination itself (as the tail clean-up does at the end).
    forward = next((h for h in holes if h.offset >= cold), None) if len(tail) == 1 else None
    if forward is not None:
        _, _, rule = target.tail_rule(code, holes)
        if rule and not rule[0].startswith(REMOVED):
            return unchanged  # (the target's own rule turns the branch and the jump into one branch)

    # Which branches cross, and how much each grows once it takes a hole.
    crossing: dict[
        int, tuple[capstone.CsInsn, int, tuple[bytes, int, str, int]]
    ] = {}  # address -> (insn, dest, rewrite)
    local: list[tuple[int, int]] = []
    for insn in [*hot, *tail] if forward is None else hot:
        dest = _local_target(insn, holes)
        if dest is None:
            continue
        if (insn.address < cold) == (dest < cold):
            local.append((insn.address, dest))
            continue
        rewritten = target.branch_to_hole(code, insn.address)
        if rewritten is None:
            return unchanged
        crossing[insn.address] = (insn, dest, rewritten)
    flipped = target.flip_to_hole(code, jump_at) if conditional else None
    if conditional and flipped is None:
        return unchanged
    growth = {a: len(r[0]) - i.size for a, (i, _, r) in crossing.items() if len(r[0]) != i.size}
    local_dest = dict(local)

    def moved(offset: int) -> int:
        """Where an old offset is now: in the code (hot) or from the start of the cold part."""
        start = 0 if offset < cold else cold
        return (
            offset - start + sum(g for a, g in growth.items() if start <= a < offset and (a < cold) == (offset < cold))
        )

    base = (len(data) + COLD_ALIGN - 1) // COLD_ALIGN * COLD_ALIGN
    parts = {True: bytearray(), False: bytearray()}  # hot?, bytes
    made: dict[bool, list[Hole]] = {True: [], False: []}
    for insn in [*hot, *tail] if forward is None else hot:
        is_hot = insn.address < cold
        out = parts[is_hot]
        if insn.address in crossing:
            _, dest, (raw, at, reloc, bias) = crossing[insn.address]
            if forward is not None:  # (to where the lone jump goes, as it would)
                made[is_hot].append(replace(forward, offset=len(out) + at, reloc=reloc))
            else:
                kind, value = (HoleKind.DATA, base + moved(dest)) if is_hot else (HoleKind.CODE, moved(dest))
                made[is_hot].append(Hole(len(out) + at, reloc, kind, "", value + bias))
            out += raw
        elif insn.address in local_dest and growth:
            # A local branch: the same instruction with its displacement for where things are now.
            again = target.local_branch(code, insn.address, moved(insn.address), moved(local_dest[insn.address]))
            if again is None:
                return unchanged  # (it no longer reaches)
            out += again
        else:
            out += code[insn.address : insn.address + insn.size]
    kept = [replace(h, offset=moved(h.offset)) for h in holes if h.offset < cold]
    moved_holes = [replace(h, offset=base + moved(h.offset)) for h in holes if h.offset >= cold and forward is None]
    new_code = bytes(parts[True])
    if forward is None:
        notes = [
            f"moved the cold part after the jump to _JIT_CONTINUE at {jump_at:#x} ({len(code) - cold} bytes) out of "
            f"line, into the data at {base:#x}; {len(crossing)} branch(es) between them retargeted"
        ]
        data = data + bytes(base - len(data)) + bytes(parts[False])
    else:
        notes = [
            f"dropped the lone jump to {forward.symbol or forward.kind.value} after the jump to _JIT_CONTINUE at "
            f"{jump_at:#x} ({len(code) - cold} bytes); {len(crossing)} branch(es) to it go there themselves"
        ]
    if flipped is not None:
        raw, at, reloc, bias = flipped
        jump = moved(jump_at)
        cont = next(h for h in kept if h.offset == jump + at)  # its hole: now to the cold part's start
        aimed = (
            replace(forward, offset=cont.offset, reloc=reloc)
            if forward is not None
            else Hole(cont.offset, reloc, HoleKind.DATA, "", base + bias)
        )
        kept = [h for h in kept if h is not cont] + [aimed]
        new_code = new_code[:jump] + raw + new_code[jump + len(raw) :]
        notes.append(f"flipped the branch to _JIT_CONTINUE at {jump:#x} to go there: the next stencil follows")
    return (
        new_code,
        sorted(kept + made[True], key=lambda h: h.offset),
        data,
        sorted(
            data_holes + [replace(h, offset=base + h.offset) for h in made[False]] + moved_holes, key=lambda h: h.offset
        ),
        notes,
    )
