"""x86-64 (System V, Linux): everything the package needs to know about it."""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..build import relocs
from ..build.relocs import Branch
from ..vmdef import constant
from . import EmulatorAbi, TailResult, Target

# The general-purpose registers as capstone names them, in every width.
_GPRS = frozenset(
    [f"r{n}" for n in ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp")]
    + [f"e{n}" for n in ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp")]
    + [f"r{k}{w}" for k in range(8, 16) for w in ("", "d", "w", "b")]
)

if TYPE_CHECKING:
    from ..build.stencils import Hole

# rel32 displacements that can be a jmp's or jcc's (the table's MAYBE rows).
_REL32 = frozenset(r.name for r in relocs.table() if r.machine == "EM_X86_64" and r.branch is Branch.MAYBE)


def _is_jcc(code: bytes | bytearray, at: int) -> bool:
    """0f 80..8f: jcc rel32."""
    return at >= 0 and code[at] == 0x0F and 0x80 <= code[at + 1] <= 0x8F


@dataclass(frozen=True)
class X86_64(Target):
    def is_branch_instruction(self, code: bytes | bytearray, offset: int, reloc: str) -> bool:
        if reloc not in _REL32:
            return super().is_branch_instruction(code, offset, reloc)
        # e8 call rel32, e9 jmp rel32, 0f 80..8f jcc rel32
        return (offset >= 1 and code[offset - 1] in (0xE8, 0xE9)) or _is_jcc(code, offset - 2)

    def tail_rule(self, code: bytes, holes: list[Hole]) -> TailResult:
        """`jmp _JIT_CONTINUE` at the end goes; `jcc _JIT_CONTINUE; jmp X` at
        the end becomes `j!cc X`."""
        from ..build.tail import REMOVED, branch_targets, hole_at, is_continue

        n = len(code)
        if n < 5 or code[n - 5] != 0xE9:
            return code, holes, []
        last = hole_at(holes, n - 4)
        if last is None or last.reloc not in _REL32 or last.addend != -4:
            return code, holes, []
        if is_continue(last, _REL32, -4):
            return (
                code[: n - 5],
                [h for h in holes if h is not last],
                [f"{REMOVED} `jmp _JIT_CONTINUE` (5 bytes): the next stencil follows"],
            )
        cond = hole_at(holes, n - 9)
        if not (n >= 11 and _is_jcc(code, n - 11)):
            return code, holes, []
        if not is_continue(cond, _REL32, -4):
            return code, holes, []
        targets = branch_targets(self, code, holes)
        if targets is None or n - 5 in targets:
            return code, holes, []
        assert cond is not None
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

    def continue_jumps(self, code: bytes, holes: list[Hole]) -> list[tuple[int, int, bool]]:
        from ..build.tail import is_continue

        found = []
        for h in holes:
            if is_continue(h, _REL32, -4):
                if code[h.offset - 1] == 0xE9:
                    found.append((h.offset - 1, h.offset + 4, False))
                elif _is_jcc(code, h.offset - 2):
                    found.append((h.offset - 2, h.offset + 4, True))
        return sorted(found)

    def ends_path(self, code: bytes, at: int) -> bool:
        return code[at] in (0xC3, 0xE9, 0xEB)  # ret, jmp rel32, jmp rel8

    def pc_relative(self, insn) -> bool:
        from capstone import x86 as X

        return any(op.type == X.X86_OP_MEM and op.mem.base == X.X86_REG_RIP for op in insn.operands)

    def local_branch(self, code: bytes, at: int, new_at: int, new_dest: int) -> bytes | None:
        op = code[at]
        if 0x70 <= op <= 0x7F or op == 0xEB:  # jcc/jmp rel8
            disp = new_dest - (new_at + 2)
            return bytes([op]) + struct.pack("<b", disp) if -128 <= disp < 128 else None
        size = 6 if _is_jcc(code, at) else 5 if op in (0xE8, 0xE9) else 0
        if not size:
            return None
        disp = new_dest - (new_at + size)
        return code[at : at + size - 4] + struct.pack("<i", disp) if -(1 << 31) <= disp < 1 << 31 else None

    def flip_to_hole(self, code: bytes, at: int) -> tuple[bytes, int, str, int] | None:
        if not _is_jcc(code, at):
            return None
        return bytes([0x0F, code[at + 1] ^ 1]) + bytes(4), 2, "R_X86_64_PC32", -4  # (jcc opcodes pair up)

    def branch_to_hole(self, code: bytes, at: int) -> tuple[bytes, int, str, int] | None:
        op = code[at]
        if 0x70 <= op <= 0x7F:  # jcc rel8 -> jcc rel32
            return bytes([0x0F, 0x80 | (op & 0xF)]) + bytes(4), 2, "R_X86_64_PC32", -4
        if _is_jcc(code, at):
            return code[at : at + 2] + bytes(4), 2, "R_X86_64_PC32", -4
        if op in (0xEB, 0xE9):  # jmp rel8 / rel32 -> jmp rel32
            return b"\xe9" + bytes(4), 1, "R_X86_64_PC32", -4
        return None

    def capstone_mode(self) -> tuple[int, int]:
        import capstone

        return capstone.CS_ARCH_X86, capstone.CS_MODE_64

    def float_register(self, operand: str) -> bool:
        return operand.startswith("xmm")

    def integer_register(self, operand: str) -> bool:
        return operand in _GPRS

    def emulator_abi(self) -> EmulatorAbi:
        import unicorn
        from unicorn import x86_const as X

        return EmulatorAbi(
            unicorn.UC_ARCH_X86,
            unicorn.UC_MODE_64,
            X.UC_X86_REG_RIP,
            X.UC_X86_REG_RSP,
            (X.UC_X86_REG_RDI, X.UC_X86_REG_RSI, X.UC_X86_REG_RDX),
            X.UC_X86_REG_XMM0,
            X.UC_X86_REG_RAX,
            None,
            b"\xc3",  # ret
        )


TARGET = X86_64(
    name="x86_64-linux",
    triple="x86_64-unknown-linux-gnu",
    # Medium code model with every datum "large": operand holes become
    # 64-bit movabs immediates, and jumps stay rel32 within the arena.
    flags=("-fno-pic", "-mcmodel=medium", "-mlarge-data-threshold=0"),
    elf_machine="EM_X86_64",
    arch=constant("ARCH_X86_64"),
    machines=("x86_64", "amd64"),
    pad=b"\xcc",  # int3
    # jmp *0(%rip), then the address, then int3 int3
    trampoline_template=b"\xff\x25\x00\x00\x00\x00" + bytes(8) + b"\xcc\xcc",
    trampoline_address_at=6,
    branch_bias=4,  # rel32 counts from the end of its 4-byte field
    insn_align=1,
    link_jump=b"\xe9" + bytes(4),  # jmp rel32, which counts from the next instruction
    link_reloc="R_X86_64_PC32",
    link_field_at=1,
    link_addend=-4,
)
