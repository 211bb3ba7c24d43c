"""Stack caching: stencil variants that keep the top of the stack in a register.

Every op is also built with the top of the operand stack passed in a pinned
register (the fourth preserve_none argument) on the way in, on the way out,
or both (stencils/template.c, CACHE_IN/CACHE_OUT).  A variant is named by
where the top is before and after it: ADD_RR takes it in the register and
leaves it there; plain ADD is memory to memory, the stencil the interpreters'
semantics are checked against.

The compiler chooses a variant for every step, in one pass:

* code is only ever entered with the whole stack in memory: at the first
  step, at every jump target, side exit and return point, and at an EXIT
  (which trace linking may overwrite with a jump into another trace);
* a step starts in the state the previous one left;
* a step leaves the top where its body naturally has it (in the register
  after a push, in memory after a pop), unless the next step is an entry
  point, which it must then leave with everything in memory.

The C stitcher does the same pass (jit_cache_stack); the tests hold the two
to the same choices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cache

from .optable import OpInfo, optable
from .stitch import Step

MEMORY, REGISTER = 0, 1
_LETTER = "MR"
_TRANSFERS = ("JUMP", "BRANCH", "TERMINATOR", "CALL", "RETURN")


def stencil_name(op: str, cached_in: int, cached_out: int) -> str:
    """The library name of a variant; memory to memory is the op itself."""
    if not cached_in and not cached_out:
        return op
    return f"{op}_{_LETTER[cached_in]}{_LETTER[cached_out]}"


def enters_in_memory(op: OpInfo) -> bool:
    """Steps of this op are always entered with the stack in memory."""
    return op.name == "EXIT"


def natural(op: OpInfo, cached_in: int) -> int:
    """Where the op's body leaves the top when nothing forces it."""
    if any(op.has(f) for f in _TRANSFERS):
        return MEMORY  # every jump leaves with the stack in memory
    if op.pushes >= 1:
        return REGISTER  # its last act is a push
    if op.pops == 0:
        return cached_in  # does not touch the stack
    return MEMORY  # its last act is a pop: the new top is in memory


def variants(op: OpInfo) -> list[tuple[int, int]]:
    """The (in, out) pairs built for an op: those the compiler can choose."""
    ins = [MEMORY] if enters_in_memory(op) else [MEMORY, REGISTER]
    pairs = [(i, MEMORY) for i in ins]
    pairs += [(i, REGISTER) for i in ins if natural(op, i) == REGISTER]
    return pairs


@cache
def _ops() -> dict[str, OpInfo]:
    return {op.name: op for op in optable()}


def entry_points(steps: Sequence[Step]) -> set[int]:
    """Step indices that are entered with the stack in memory."""
    ops = _ops()
    entries = {0}
    for i, s in enumerate(steps):
        entries.update(k for k in (s.target, s.exit, s.continue_to) if k is not None)
        if enters_in_memory(ops[s.op]):
            entries.add(i)
    return entries


def assign(steps: Sequence[Step], names: Mapping[str, object]) -> list[Step]:
    """Steps with each op replaced by the variant chosen for it.  `names` is
    the library's stencils: a variant it lacks falls back to memory out."""
    ops = _ops()
    entries = entry_points(steps)
    out: list[Step] = []
    state = MEMORY
    for i, s in enumerate(steps):
        op = ops[s.op]
        cached_in = MEMORY if i in entries else state
        want = natural(op, cached_in)
        if i + 1 >= len(steps) or i + 1 in entries:
            want = MEMORY
        name = stencil_name(s.op, cached_in, want)
        if name not in names:
            want, name = MEMORY, stencil_name(s.op, cached_in, MEMORY)
        out.append(replace(s, op=name))
        state = want
    return out


def base_op(name: str) -> str:
    """The op a stencil name is a variant of."""
    head, _, tail = name.rpartition("_")
    return head if head and tail in ("MR", "RM", "RR") else name
