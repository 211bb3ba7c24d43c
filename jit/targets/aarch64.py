"""AArch64 (AAPCS64, Linux): everything the package needs to know about it."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..build import relocs
from ..build.relocs import Branch
from ..vmdef import constant
from . import EmulatorAbi, TailResult, Target

if TYPE_CHECKING:
    from ..build.stencils import Hole

_COND = frozenset(r.name for r in relocs.table() if r.branch is Branch.COND)  # b.cond, cbz, tbz
_B = next(r.name for r in relocs.table() if r.branch is Branch.JUMP)  # b


def _invert(insn: int) -> int | None:
    """The branch with the opposite condition, or None (b.al/b.nv cannot flip)."""
    if insn & 0xFF000010 == 0x54000000:  # b.cond
        return None if insn & 0xE == 0xE else insn ^ 1
    if insn & 0x7E000000 in (0x34000000, 0x36000000):  # cbz/cbnz, tbz/tbnz
        return insn ^ (1 << 24)
    return None


def _local_branch(insn: int) -> tuple[int, int, str] | None:
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


@dataclass(frozen=True)
class AArch64(Target):
    def tail_rule(self, code: bytes, holes: list[Hole]) -> TailResult:
        """`b _JIT_CONTINUE` at the end goes; a conditional branch around a final
        `b _JIT_CONTINUE; b X` or `b X` is inverted or retargeted to X."""
        from ..build.tail import REMOVED, branch_targets, hole_at, is_continue

        n = len(code)
        last = hole_at(holes, n - 4)
        if n < 4 or last is None or last.reloc != _B:
            return code, holes, []
        if is_continue(last, {_B}, 0):
            return (
                code[: n - 4],
                [h for h in holes if h is not last],
                [f"{REMOVED} `b _JIT_CONTINUE` (4 bytes): the next stencil follows"],
            )
        cond = hole_at(holes, n - 8)
        if is_continue(cond, {_B}, 0):
            return self._retarget(code, holes, last, 8, invert=False)
        if cond is None:
            return self._retarget(code, holes, last, 4, invert=True)
        if not is_continue(cond, _COND, 0):
            return code, holes, []
        flipped = _invert(int.from_bytes(code[n - 8 : n - 4], "little"))
        targets = branch_targets(self, code, holes)
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

    def continue_jumps(self, code: bytes, holes: list[Hole]) -> list[tuple[int, int, bool]]:
        from ..build.tail import is_continue

        found = []
        for h in holes:
            if is_continue(h, {_B}, 0):
                found.append((h.offset, h.offset + 4, False))
            elif is_continue(h, {"R_AARCH64_CONDBR19"}, 0):
                found.append((h.offset, h.offset + 4, True))
        return sorted(found)

    def pc_relative(self, insn) -> bool:
        from capstone import arm64 as A

        literal = insn.mnemonic.startswith("ldr") and insn.operands and insn.operands[-1].type == A.ARM64_OP_IMM
        return insn.mnemonic in ("adr", "adrp") or bool(literal)

    def ends_path(self, code: bytes, at: int) -> bool:
        insn = int.from_bytes(code[at : at + 4], "little")
        return insn == 0xD65F03C0 or insn & 0xFC000000 == 0x14000000  # ret, b

    def local_branch(self, code: bytes, at: int, new_at: int, new_dest: int) -> bytes | None:
        insn = int.from_bytes(code[at : at + 4], "little")
        words = (new_dest - new_at) >> 2
        if insn & 0xFC000000 == 0x14000000:  # b: 26 bits of words
            mask, bits, shift = 0x03FFFFFF, 26, 0
        else:
            decoded = _local_branch(insn)
            if decoded is None:
                return None
            mask, bits, shift = decoded[1], 19 if decoded[2] == "R_AARCH64_CONDBR19" else 14, 5
        if not -(1 << (bits - 1)) <= words < 1 << (bits - 1):
            return None
        return ((insn & ~mask & 0xFFFFFFFF) | ((words << shift) & mask)).to_bytes(4, "little")

    def flip_to_hole(self, code: bytes, at: int) -> tuple[bytes, int, str, int] | None:
        insn = int.from_bytes(code[at : at + 4], "little")
        flipped = _invert(insn)
        decoded = _local_branch(insn)
        if flipped is None or decoded is None or decoded[2] != "R_AARCH64_CONDBR19":
            return None
        return (flipped & ~decoded[1] & 0xFFFFFFFF).to_bytes(4, "little"), 0, decoded[2], 0

    def branch_to_hole(self, code: bytes, at: int) -> tuple[bytes, int, str, int] | None:
        insn = int.from_bytes(code[at : at + 4], "little")
        if insn & 0xFC000000 == 0x14000000:  # b
            return (insn & 0xFC000000).to_bytes(4, "little"), 0, _B, 0
        decoded = _local_branch(insn)
        if decoded is None or decoded[2] != "R_AARCH64_CONDBR19":
            return None  # (tbz/tbnz reach only 32 KB: the data may be further away)
        return (insn & ~decoded[1] & 0xFFFFFFFF).to_bytes(4, "little"), 0, decoded[2], 0

    def _retarget(self, code: bytes, holes: list[Hole], last: Hole, drop: int, invert: bool) -> TailResult:
        """Make the local conditional branch just before the final `b X` (and, when
        drop is 8, a `b _JIT_CONTINUE`) branch to X itself, dropping what follows.

        `bcc L; b _JIT_CONTINUE; L: b X`  becomes  `bcc X`   (drop 8)
        `bcc END; b X; END:`              becomes  `b!cc X`  (drop 4, invert)
        """
        from ..build.stencils import Hole
        from ..build.tail import branch_targets, hole_at

        n = len(code)
        at = n - drop - 4
        if at < 0 or hole_at(holes, at) is not None:
            return code, holes, []
        insn = int.from_bytes(code[at : at + 4], "little")
        decoded = _local_branch(insn)
        if decoded is None:
            return code, holes, []
        offset, mask, reloc = decoded
        expected = drop if not invert else drop + 4
        targets = branch_targets(self, code[:at], holes)
        if offset != expected or targets is None or targets & set(range(at + 4, n + 1, 4)):
            return code, holes, []
        if invert:
            flipped = _invert(insn)
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

    def capstone_mode(self) -> tuple[int, int]:
        import capstone

        return capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM

    def float_register(self, operand: str) -> bool:
        return re.fullmatch(r"[bhsdqv]\d+(\.\w+)?(\[\d+\])?", operand) is not None

    def integer_register(self, operand: str) -> bool:
        return re.fullmatch(r"[xw](\d+|zr)", operand) is not None

    def emulator_abi(self) -> EmulatorAbi:
        import unicorn
        from unicorn import arm64_const as A

        return EmulatorAbi(
            unicorn.UC_ARCH_ARM64,
            unicorn.UC_MODE_ARM,
            A.UC_ARM64_REG_PC,
            A.UC_ARM64_REG_SP,
            (A.UC_ARM64_REG_X0, A.UC_ARM64_REG_X1, A.UC_ARM64_REG_X2),
            A.UC_ARM64_REG_D0,
            A.UC_ARM64_REG_X0,
            A.UC_ARM64_REG_X30,
            struct.pack("<I", 0xD65F03C0),  # ret
        )


TARGET = AArch64(
    name="aarch64-linux",
    triple="aarch64-unknown-linux-gnu",
    # Large code model: addresses are built with movz/movk, so any 64-bit
    # value fits a hole, and no GOT is needed.  No outline atomics: they
    # would call into libgcc.
    flags=("-fno-pic", "-mcmodel=large", "-mno-outline-atomics"),
    elf_machine="EM_AARCH64",
    arch=constant("ARCH_AARCH64"),
    machines=("aarch64", "arm64"),
    pad=b"\x00",  # udf #0 once four of them line up
    # ldr x16, 8; br x16; the address (x16 is the intra-procedure scratch register)
    trampoline_template=struct.pack("<II", 0x58000050, 0xD61F0200) + bytes(8),
    trampoline_address_at=8,
    branch_bias=0,  # a branch counts from the instruction itself
    insn_align=4,
    link_jump=struct.pack("<I", 0x14000000),  # b, which counts from itself
    link_reloc="R_AARCH64_JUMP26",
    link_field_at=0,
    link_addend=0,
)
