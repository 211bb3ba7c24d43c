"""Compiled code as debuggers and profilers see it: a name, bytes at an address, steps mapped to source lines.

One description feeds every consumer: the perf map, the perf jitdump
(jit.runtime.jitdump), GDB's JIT interface (jit.runtime.gdbjit) and the
explorer (jit.tools.explore).  Only native copy-and-patch code has one: its
layout says where every step starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..lang.ir import Program
from .native import Compiled


@dataclass(frozen=True)
class StepCode:
    """One step's machine code inside a piece of compiled code."""

    offset: int  # from the code's start
    size: int
    line: int  # the .uop line of the step's IR position
    stencil: str  # the stencil it was stitched from (its stack-caching variant)

    def symbol(self, filename: str) -> str:
        return f"jit:{os.path.basename(filename)}:{self.line}:{self.stencil.lower()}"


@dataclass(frozen=True)
class CodeInfo:
    """A trace or function as compiled: where it is and what each byte came from."""

    name: str  # jit:FILE:LINE:KIND, as perf and gdb show it
    filename: str  # the .uop file (absolute where it was given so)
    address: int
    code: bytes  # the region as written: code, trampolines, data
    code_size: int  # how much of it is instructions
    steps: tuple[StepCode, ...]


def describe(compiled: Compiled, program: Program, start_pc: int, kind: str) -> CodeInfo:
    """Describe copy-and-patch code (read back from its region)."""
    offsets = compiled.layout.code_offsets
    stencils = compiled.stencils
    steps = tuple(
        StepCode(offsets[i], offsets[i + 1] - offsets[i], line_of(program, s.position), stencils[i])
        for i, s in enumerate(compiled.steps)
    )
    filename = os.path.abspath(program.filename) if os.path.exists(program.filename) else program.filename
    name = f"jit:{os.path.basename(program.filename)}:{line_of(program, start_pc)}:{kind}"
    return CodeInfo(name, filename, compiled.address(0), compiled.read(), offsets[-1], steps)


def line_of(program: Program, position: int) -> int:
    """The source line of an IR position (an exit may resume one past the last instruction)."""
    return program.code[min(position, len(program.code) - 1)].line if program.code else 0
