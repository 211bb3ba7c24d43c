"""A step: one stencil instance, the compiler's IR between forming and stitching.

Forming (jit.codegen.trace) makes steps from a program or a recorded path,
fusion and stack caching rewrite them, layout and stitching turn them into
code; the backends (copy-and-patch, the emulator, the LLVM peer) all take
them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Step:
    """One stencil instance: which op, its operands, and where its jumps go.

    Treated as a value: passes make new steps (dataclasses.replace) and
    never assign to one.  Not frozen, because a frozen dataclass's __init__
    costs about six times as much, and forming makes one or two steps per
    micro-op on the compile path (measured: 1.9 us against 0.3 us a step).
    """

    op: str
    operand0: int = 0
    operand1: int = 0
    position: int = 0  # IR position
    target: int | None = None  # step index _JIT_TARGET refers to
    exit: int | None = None  # step index _JIT_EXIT refers to
    target_address: int | None = None  # or an address outside this code (another trace)
    continue_to: int | None = None  # CALL in a trace: the step its callee returns to
