"""--dump-traces: compiled code as it sits in memory, step by step.

Each step is headed by its op, IR position and source line; its
instructions are disassembled from the sealed region itself (so what is
shown is what runs), with each hole's relocation and the value patched in.
"""

from __future__ import annotations

from ..build.stencils import StencilLibrary
from ..codegen.stitch import TRAMPOLINE_SIZE
from ..lang.ir import Program
from .disasm import disassemble


def describe_compiled(compiled, library: StencilLibrary, program: Program, title: str) -> str:
    """`compiled` is native (jit.runtime.native.Compiled) or emulated code: anything with
    layout, steps, stencils, trampolines, address(step) and read()."""
    lay, base = compiled.layout, compiled.address(0)
    code = compiled.read()
    out = [f"== {title}: {len(compiled.steps)} steps, {lay.code_offsets[-1]} bytes of code at {base:#x}"]
    for i, (step, name) in enumerate(zip(compiled.steps, compiled.stencils, strict=True)):
        stencil = library.ops[name]
        start, end = lay.code_offsets[i], lay.code_offsets[i + 1]
        line = program.code[step.position].line if step.position < len(program.code) else 0
        out.append(f"-- step {i}: {name.lower()} (pc {step.position}, line {line}) at {base + start:#x}")
        for text in disassemble(library.target, code[start:end], stencil.holes, base + start):
            out.append(text)
    if compiled.trampolines:
        start = lay.trampolines
        end = start + compiled.trampolines * TRAMPOLINE_SIZE
        out.append(f"-- {compiled.trampolines} trampoline(s) to far targets at {base + start:#x}")
        out += disassemble(library.target, code[start:end], (), base + start)
    return "\n".join(out) + "\n"
