"""Stack caching: stencil variants that keep the top of the stack in registers.

Every op is also built with the top one or two slots of the operand stack
passed in pinned registers (the fourth and fifth preserve_none arguments) on
the way in, on the way out, or both (stencils/template.c, CACHE_IN and
CACHE_OUT).  A variant is named by how many slots are in registers before
and after it: ADD_21 takes two and leaves one (`add r15, rdi` on x86-64);
plain ADD is memory to memory, the stencil the interpreters' semantics are
checked against.  How deep the cache goes is a build setting (DEPTH, or
jit.build.library.Variant(stack_depth=...)); a library's depth shows in its names.

The compiler chooses a variant for every step, in one pass:

* code is only ever entered with the whole stack in memory: at the first
  step, at every jump target, side exit and return point, and at an EXIT
  (which trace linking may overwrite with a jump into another trace);
* a step starts in the state the previous one left;
* a step leaves as many slots cached as its body naturally has (after a
  push, up to the depth; after a pop, what is left), unless the next step is
  an entry point, which it must then leave with everything in memory.

The C stitcher does the same pass (jit_cache_stack); the tests hold the two
to the same choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import cache

from ..lang.optable import OpInfo, optable
from .step import Step

DEPTH = 2  # slots the default build can keep in registers (the template has two)
_TRANSFERS = ("JUMP", "BRANCH", "TERMINATOR", "CALL", "RETURN")


def stencil_name(op: str, cached_in: int, cached_out: int) -> str:
    """The library name of a variant; memory to memory is the op itself."""
    if not cached_in and not cached_out:
        return op
    return f"{op}_{cached_in}{cached_out}"


def states(name: str) -> tuple[int, int]:
    """(in, out) of a stencil name: how many slots are cached."""
    head, _, tail = name.rpartition("_")
    if head and len(tail) == 2 and tail.isdigit():
        return int(tail[0]), int(tail[1])
    return 0, 0


def base_op(name: str) -> str:
    """The op a stencil name is a variant of."""
    return name.rpartition("_")[0] if states(name) != (0, 0) else name


def library_depth(names: Iterable[str]) -> int:
    """How many slots a library's variants keep in registers."""
    return max((max(states(n)) for n in names), default=0)


def enters_in_memory(op: OpInfo) -> bool:
    """Steps of this op are always entered with the stack in memory."""
    return op.name == "EXIT"


def natural(op: OpInfo, cached_in: int, depth: int = DEPTH) -> int:
    """How many slots the op's body leaves cached when nothing forces it."""
    if any(op.has(f) for f in _TRANSFERS) or op.pops < 0:
        return 0  # every jump leaves with the stack in memory
    left = max(cached_in - op.pops, 0)  # pops take cached slots first
    return min(depth, left + op.pushes)  # pushes keep up to `depth` in registers


def variants(op: OpInfo, depth: int = DEPTH) -> list[tuple[int, int]]:
    """The (in, out) pairs built for an op: those the compiler can choose."""
    ins = [0] if enters_in_memory(op) else list(range(depth + 1))
    pairs = [(i, 0) for i in ins]
    pairs += [(i, natural(op, i, depth)) for i in ins if natural(op, i, depth) > 0]
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


def assign(steps: Sequence[Step], names: Mapping[str, object], depth: int | None = None) -> list[Step]:
    """Steps with each op replaced by the variant chosen for it.  `names` is
    the library's stencils, `depth` its library_depth (worked out if not
    given); a variant it lacks falls back to leaving the stack in memory."""
    ops = _ops()
    depth = library_depth(names) if depth is None else depth
    entries = entry_points(steps)
    out: list[Step] = []
    state = 0
    for i, s in enumerate(steps):
        op = ops[s.op]
        cached_in = 0 if i in entries else state
        want = natural(op, cached_in, depth)
        if i + 1 >= len(steps) or i + 1 in entries:
            want = 0
        name = stencil_name(s.op, cached_in, want)
        if name not in names:
            want, name = 0, stencil_name(s.op, cached_in, 0)
        out.append(replace(s, op=name))
        state = want
    return out
