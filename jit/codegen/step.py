"""A step: one stencil instance, the compiler's IR between forming and stitching.

Forming (jit.codegen.trace) makes steps from a program or a recorded path,
fusion and stack caching rewrite them, layout and stitching turn them into
code; the backends (copy-and-patch, the emulator, the LLVM peer) all take
them.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    operand2: int = 0  # more operands, for op sets whose instructions have them (jit.opsets)
    operand3: int = 0


Where = list[int]  # a rewrite's map: old step index -> new one (one more entry for the end)


def entries(steps: Sequence[Step]) -> set[int]:
    """Step indices something jumps to (and the first): where straight lines begin."""
    found = {0}
    for s in steps:
        if s.target is not None:
            found.add(s.target)
        if s.exit is not None:
            found.add(s.exit)
        if s.continue_to is not None:
            found.add(s.continue_to)
    return found


def renumber(steps: list[Step], where: Where) -> list[Step]:
    """Point every target, exit and return point at the new indices."""
    for k, s in enumerate(steps):
        if s.target is not None or s.exit is not None or s.continue_to is not None:
            steps[k] = Step(  # (not dataclasses.replace: ten times slower, and this is per step)
                s.op,
                s.operand0,
                s.operand1,
                s.position,
                None if s.target is None else where[s.target],
                None if s.exit is None else where[s.exit],
                s.target_address,
                None if s.continue_to is None else where[s.continue_to],
                s.operand2,
                s.operand3,
            )
    return steps
