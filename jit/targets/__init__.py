"""The machines stencils are built for: one module per architecture says everything about it.

A Target holds what differs between architectures: clang's triple and
flags, the ELF machine, the padding between pieces of code, how a
trampoline and a jump are encoded, where a branch displacement counts
from, which holes are branch displacements, the tail clean-up's rules, the
disassembler and the emulator's view of the C ABI.  The rest of the code
asks its Target and never tests a target's name.  Adding an architecture
means a module here, registered below, plus its rows in
stencils/relocs.def (docs/targets.md).
"""

from __future__ import annotations

import importlib
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from ..errors import ToolchainError
from ..vmdef import TRAMPOLINE_SIZE, constant

if TYPE_CHECKING:
    import capstone

    from ..build.stencils import Hole

TailResult = tuple[bytes, list["Hole"], list[str]]
# An instruction between the integer and the float registers (a move, or a
# conversion such as cvtsi2sd) counts as this many in a stencil's cost: its
# latency (3 cycles or more on x86-64 and AArch64 cores) lies on the path
# of the value it takes across.
CROSS_FILE_COST = 3


@dataclass(frozen=True)
class EmulatorAbi:
    """What the emulator (unicorn) needs of an architecture's registers and C ABI."""

    arch: int  # unicorn UC_ARCH_*
    mode: int  # unicorn UC_MODE_*
    pc: int
    sp: int
    args: tuple[int, ...]  # integer argument registers
    fp_arg: int  # first floating-point argument register
    result: int  # integer return register
    link: int | None  # the link register, or None when a call pushes the return address
    ret: bytes  # a return instruction


@dataclass(frozen=True)
class Target:
    """One architecture on Linux.  Subclasses (one module each) fill in the methods."""

    name: str  # our name: x86_64-linux
    triple: str  # clang's --target
    flags: tuple[str, ...]  # clang flags for this target's stencils, each with its reason in the module
    elf_machine: str  # pyelftools' e_machine
    arch: int  # the C stitcher's number for it (vm.h ARCH_*)
    machines: tuple[str, ...]  # os.uname().machine values of hosts that run it natively
    pad: bytes  # one byte filling gaps in code: traps if ever executed
    trampoline_template: bytes  # TRAMPOLINE_SIZE bytes jumping to the address at trampoline_address_at
    trampoline_address_at: int
    branch_bias: int  # a branch displacement counts from the hole plus this many bytes
    insn_align: int  # instruction size to step over bytes the disassembler cannot decode
    # The direct jump linking writes over a side exit: its bytes with the
    # displacement zero, and the relocation (at link_field_at, S + A with A
    # link_addend) that fills it in; the C stitcher patches it the same way.
    link_jump: bytes
    link_reloc: str
    link_field_at: int
    link_addend: int

    def trampoline(self, destination: int) -> bytes:
        """TRAMPOLINE_SIZE bytes that jump to an absolute address."""
        t, at = self.trampoline_template, self.trampoline_address_at
        return t[:at] + struct.pack("<Q", destination & 0xFFFFFFFFFFFFFFFF) + t[at + 8 :]

    def jump(self, place: int, destination: int) -> bytes:
        """The shortest unconditional jump from `place` to `destination`
        (what linking writes over a side exit): the direct jump, or a
        trampoline where that does not reach."""
        from ..codegen.patch import RelocationError, patch

        code, at = bytearray(self.link_jump), self.link_field_at
        try:
            patch(code, at, self.link_reloc, destination + self.link_addend, place + at)
        except RelocationError:
            return self.trampoline(destination)
        return bytes(code)

    def is_branch_instruction(self, code: bytes | bytearray, offset: int, reloc: str) -> bool:
        """Whether the hole at `offset` is a jump's or call's displacement (so a
        trampoline can stand in for a far target)."""
        from ..build import relocs
        from ..build.relocs import Branch

        return relocs.get(reloc).branch not in (Branch.NONE, Branch.MAYBE)

    def tail_rule(self, code: bytes, holes: list[Hole]) -> TailResult:
        """One step of the tail clean-up (jit.build.tail): drop or retarget a final jump."""
        raise NotImplementedError

    def continue_jumps(self, code: bytes, holes: list[Hole]) -> list[tuple[int, int, bool]]:
        """Every jump to _JIT_CONTINUE, unconditional or a conditional branch:
        (where it starts, where it ends, conditional?), in order."""
        raise NotImplementedError

    def ends_path(self, code: bytes, at: int) -> bool:
        """Whether the instruction at `at` never falls through (a return, an unconditional jump)."""
        raise NotImplementedError

    def pc_relative(self, insn: capstone.CsInsn) -> bool:
        """Whether a (decoded) instruction addresses data relative to itself."""
        raise NotImplementedError

    def local_branch(self, code: bytes, at: int, new_at: int, new_dest: int) -> bytes | None:
        """The direct branch at `at`, re-encoded at `new_at` to reach `new_dest`
        in the same form; None if it no longer reaches."""
        raise NotImplementedError

    def flip_to_hole(self, code: bytes, at: int) -> tuple[bytes, int, str, int] | None:
        """The conditional branch at `at` with its condition flipped and its
        destination a hole, as branch_to_hole gives it; None if it cannot be."""
        raise NotImplementedError

    def branch_to_hole(self, code: bytes, at: int) -> tuple[bytes, int, str, int] | None:
        """The direct branch at `at` rewritten so that its destination is a hole
        (hot/cold splitting, jit.build.tail): (its new bytes, the hole's offset
        in them, the relocation, what the addend adds), or None if it cannot be."""
        raise NotImplementedError

    def capstone_mode(self) -> tuple[int, int]:
        raise NotImplementedError

    def float_register(self, operand: str) -> bool:
        """Whether a disassembled operand names a float (vector) register."""
        raise NotImplementedError

    def integer_register(self, operand: str) -> bool:
        """Whether a disassembled operand names a general-purpose register."""
        raise NotImplementedError

    def code_cost(self, code: bytes) -> int:
        """What the stack-cache choice adds up (jit.codegen.stackcache): one
        per instruction, CROSS_FILE_COST for one with an integer register on
        one side and a float register on the other."""
        cost = 0
        for _, _, _, op_str in self.disassembler.disasm_lite(code, 0):
            operands = op_str.split(", ")
            crosses = len(operands) == 2 and (
                (self.float_register(operands[0]) and self.integer_register(operands[1]))
                or (self.integer_register(operands[0]) and self.float_register(operands[1]))
            )
            cost += CROSS_FILE_COST if crosses else 1
        return cost

    def emulator_abi(self) -> EmulatorAbi:
        raise NotImplementedError

    @cached_property
    def disassembler(self) -> capstone.Cs:
        import capstone

        md = capstone.Cs(*self.capstone_mode())
        md.detail = True
        return md

    def __post_init__(self) -> None:
        if len(self.trampoline_template) != TRAMPOLINE_SIZE:
            raise ValueError(f"{self.name}: a trampoline is {TRAMPOLINE_SIZE} bytes")
        if self.arch != constant(f"ARCH_{self.elf_machine.removeprefix('EM_')}"):
            raise ValueError(f"{self.name}: arch {self.arch} is not vm.h's ARCH_ for {self.elf_machine}")


_MODULES = {"x86_64-linux": "x86_64", "aarch64-linux": "aarch64"}  # name -> the module here defining TARGET


class _Registry(Mapping[str, Target]):
    """Every target by name; a target's module is imported when it is first
    asked for (a native run needs only its own: start-up time)."""

    def __init__(self) -> None:
        self._loaded: dict[str, Target] = {}  # (a lookup per link: importlib's is microseconds)

    def __getitem__(self, name: str) -> Target:
        target = self._loaded.get(name)
        if target is None:
            module = _MODULES[name]  # (KeyError for an unknown name, as a dict)
            target = self._loaded[name] = importlib.import_module(f"{__name__}.{module}").TARGET
        return target

    def __contains__(self, name: object) -> bool:
        return name in _MODULES

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


TARGETS: Mapping[str, Target] = _Registry()


def target_name(name: str) -> str:
    """A target by its name, or by a machine name that runs it (aarch64, arm64, x86_64, amd64)."""
    if name in TARGETS:
        return name
    for full, target in TARGETS.items():
        if name in target.machines:
            return full
    known = ", ".join(f"{n} ({'/'.join(t.machines)})" for n, t in TARGETS.items())
    raise ToolchainError(f"unknown target {name!r}; targets are {known}")


def get_target(name: str) -> Target:
    return TARGETS[target_name(name)]


def host_target() -> str | None:
    """The target matching this machine, if there is one."""
    machine = os.uname().machine
    return next((name for name in TARGETS if machine in TARGETS[name].machines), None)
