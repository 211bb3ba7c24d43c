"""Tail clean-up: drop a stencil's final jump to its continuation.

Stencils are laid out in execution order, so a final `jmp _JIT_CONTINUE`
jumps to the very next byte and can go.  When a stencil ends in
`jcc _JIT_CONTINUE; jmp X` (a conditional branch, compiled "backwards"), the
condition is inverted to `j!cc X` so that the continuation falls through.
An inversion is made only when no other branch in the stencil lands on the
jump it deletes.  Each change is recorded as a note, since the bytes then
differ on purpose from the object file.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import capstone

from . import relocs
from .relocs import Branch
from .stencils import Hole, HoleKind

# From the relocation table: x86-64 rel32 displacements (jmp, jcc), AArch64
# conditional branches and AArch64 `b`.
_X86_JUMPS = {r.name for r in relocs.table() if r.machine == "EM_X86_64" and r.branch is Branch.MAYBE}
_A64_COND = {r.name for r in relocs.table() if r.branch is Branch.COND}
_A64_JUMP = next(r.name for r in relocs.table() if r.branch is Branch.JUMP)


@cache
def disassembler(target: str) -> capstone.Cs:
    if target.startswith("x86_64"):
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    else:
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    md.detail = True
    return md


def _branch_targets(target: str, code: bytes, holes: list[Hole]) -> set[int] | None:
    """Offsets that direct, unrelocated branches in `code` land on.

    None if the code does not decode cleanly (data in code), in which case
    the caller must not assume anything about who jumps where.
    """
    hole_offsets = {h.offset for h in holes}
    found: set[int] = set()
    end = 0
    for insn in disassembler(target).disasm(code, 0):
        end = insn.address + insn.size
        if not (insn.group(capstone.CS_GRP_JUMP) or insn.group(capstone.CS_GRP_CALL)):
            continue
        if any(insn.address <= h < end for h in hole_offsets):
            continue  # the displacement is a hole: not an internal target
        imms = [op.imm for op in insn.operands if op.type == capstone.CS_OP_IMM]
        if imms:
            found.add(imms[-1])
    return found if end == len(code) else None


def _hole_at(holes: list[Hole], offset: int) -> Hole | None:
    return next((h for h in holes if h.offset == offset), None)


def _is_continue(h: Hole | None, relocs: set[str], addend: int) -> bool:
    return (
        h is not None
        and h.kind is HoleKind.CONTINUE
        and h.symbol == "_JIT_CONTINUE"
        and (h.reloc in relocs and h.addend == addend)
    )


def _x86(code: bytes, holes: list[Hole]) -> tuple[bytes, list[Hole], list[str]]:
    n = len(code)
    if n < 5 or code[n - 5] != 0xE9:
        return code, holes, []
    last = _hole_at(holes, n - 4)
    if last is None or last.reloc not in _X86_JUMPS or last.addend != -4:
        return code, holes, []
    if _is_continue(last, _X86_JUMPS, -4):
        return (
            code[: n - 5],
            [h for h in holes if h is not last],
            ["removed the final `jmp _JIT_CONTINUE` (5 bytes): the next stencil follows"],
        )
    cond = _hole_at(holes, n - 9)
    if not (n >= 11 and code[n - 11] == 0x0F and 0x80 <= code[n - 10] <= 0x8F):
        return code, holes, []
    if not _is_continue(cond, _X86_JUMPS, -4):
        return code, holes, []
    targets = _branch_targets("x86_64-linux", code, holes)
    if targets is None or n - 5 in targets:
        return code, holes, []
    new = bytearray(code[: n - 5])
    new[n - 10] ^= 1  # jcc opcodes pair up: 0f 84 je / 0f 85 jne, ...
    inverted = replace(cond, kind=last.kind, symbol=last.symbol)
    out = [inverted if h is cond else h for h in holes if h is not last]
    return (
        bytes(new),
        out,
        [
            f"inverted the final `jcc _JIT_CONTINUE; jmp {last.symbol}` into one branch to "
            f"{last.symbol} at {n - 11:#x} (5 bytes removed): the next stencil follows"
        ],
    )


def _invert_a64(insn: int) -> int | None:
    if insn & 0xFF000010 == 0x54000000:  # b.cond
        return None if insn & 0xE == 0xE else insn ^ 1
    if insn & 0x7E000000 in (0x34000000, 0x36000000):  # cbz/cbnz, tbz/tbnz
        return insn ^ (1 << 24)
    return None


def _aarch64(code: bytes, holes: list[Hole]) -> tuple[bytes, list[Hole], list[str]]:
    n = len(code)
    last = _hole_at(holes, n - 4)
    if n < 4 or last is None or last.reloc != _A64_JUMP:
        return code, holes, []
    if _is_continue(last, {_A64_JUMP}, 0):
        return (
            code[: n - 4],
            [h for h in holes if h is not last],
            ["removed the final `b _JIT_CONTINUE` (4 bytes): the next stencil follows"],
        )
    cond = _hole_at(holes, n - 8)
    if _is_continue(cond, {_A64_JUMP}, 0):
        return _a64_retarget(code, holes, last, 8, invert=False)
    if cond is None:
        return _a64_retarget(code, holes, last, 4, invert=True)
    if not _is_continue(cond, _A64_COND, 0):
        return code, holes, []
    flipped = _invert_a64(int.from_bytes(code[n - 8 : n - 4], "little"))
    targets = _branch_targets("aarch64-linux", code, holes)
    if flipped is None or targets is None or n - 4 in targets:
        return code, holes, []
    new = code[: n - 8] + flipped.to_bytes(4, "little")
    inverted = replace(cond, kind=last.kind, symbol=last.symbol, addend=last.addend)
    out = [inverted if h is cond else h for h in holes if h is not last]
    return (
        new,
        out,
        [
            f"inverted the final `b.cc _JIT_CONTINUE; b {last.symbol}` into one branch to "
            f"{last.symbol} at {n - 8:#x} (4 bytes removed): the next stencil follows"
        ],
    )


def _a64_local_branch(insn: int) -> tuple[int, int, str] | None:
    """(byte offset, mask of the offset field, relocation) of a conditional branch."""
    if insn & 0xFF000010 == 0x54000000 or insn & 0x7E000000 == 0x34000000:
        mask, bits, reloc = 0x00FFFFE0, 19, "R_AARCH64_CONDBR19"
    elif insn & 0x7E000000 == 0x36000000:
        mask, bits, reloc = 0x0007FFE0, 14, "R_AARCH64_TSTBR14"
    else:
        return None
    field = (insn & mask) >> 5
    if field >> (bits - 1):
        field -= 1 << bits
    return field * 4, mask, reloc


def _a64_retarget(
    code: bytes, holes: list[Hole], last: Hole, drop: int, invert: bool
) -> tuple[bytes, list[Hole], list[str]]:
    """Make the local conditional branch just before the final `b X` (and, when
    drop is 8, a `b _JIT_CONTINUE`) branch to X itself, dropping what follows.

    `bcc L; b _JIT_CONTINUE; L: b X`  becomes  `bcc X`   (drop 8)
    `bcc END; b X; END:`              becomes  `b!cc X`  (drop 4, invert)
    """
    n = len(code)
    at = n - drop - 4
    if at < 0 or _hole_at(holes, at) is not None:
        return code, holes, []
    insn = int.from_bytes(code[at : at + 4], "little")
    decoded = _a64_local_branch(insn)
    if decoded is None:
        return code, holes, []
    offset, mask, reloc = decoded
    expected = drop if not invert else drop + 4
    targets = _branch_targets("aarch64-linux", code[:at], holes)
    if offset != expected or targets is None or targets & set(range(at + 4, n + 1, 4)):
        return code, holes, []
    if invert:
        flipped = _invert_a64(insn)
        if flipped is None:
            return code, holes, []
        insn = flipped
    new = code[:at] + (insn & ~mask).to_bytes(4, "little")
    branch = Hole(at, reloc, last.kind, last.symbol, last.addend)
    gone = {at + k for k in range(4, drop + 4, 4)}
    out = sorted([h for h in holes if h.offset not in gone] + [branch], key=lambda h: h.offset)
    how = "inverted" if invert else "retargeted"
    return (
        new,
        out,
        [
            f"{how} the branch at {at:#x} to go straight to {last.symbol} and removed "
            f"the final jump(s) ({drop} bytes): the next stencil follows"
        ],
    )


def clean_tail(target: str, code: bytes, holes: list[Hole]) -> tuple[bytes, list[Hole], list[str]]:
    """Apply the rules above until none applies; returns code, holes, notes."""
    rule = _x86 if target.startswith("x86_64") else _aarch64
    notes: list[str] = []
    while True:
        code, holes, more = rule(code, holes)
        if not more:
            return code, holes, notes
        notes += more
