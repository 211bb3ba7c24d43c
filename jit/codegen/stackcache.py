"""Stack caching: stencil variants that keep the top of the stack in registers.

Every op is also built with the top one or two slots of the operand stack
passed in pinned registers (the fourth and fifth preserve_none arguments) on
the way in, on the way out, or both (stencils/template.c, CACHE_IN and
CACHE_OUT).  A variant is named by how many slots are in registers before
and after it: ADD_21 takes two and leaves one (`add r15, rdi` on x86-64);
plain ADD is memory to memory, the stencil the interpreters' semantics are
checked against.  Ops flagged FLOATS in ops.def (float arithmetic, and the
ops that move slots whatever they hold) are also built with the cached
slots in float registers (the last two arguments: xmm0/xmm1, d0/d1) on
either side, written with an `f`: FADD_2f1f is one `addsd xmm0, xmm1`.  How
deep the cache goes, and whether it has float variants, are build settings
(jit.build.library.Variant: stack_depth, float_cache); a library's depth
shows in its names.

A cache state is a number: 0 (all in memory), 1 to DEPTH slots in the
integer registers, or DEPTH + 1 to 2 * DEPTH for 1 to DEPTH slots in the
float registers (vm.h's CACHE_* say the same to C).

The compiler chooses a variant for every step:

* code is only ever entered with the whole stack in memory: at the first
  step, at every jump target, side exit and return point, and at an EXIT
  (which trace linking may overwrite with a jump into another trace);
* a step starts in the state the previous one left;
* a step leaves as many slots cached as its body naturally has (after a
  push, up to the depth; after a pop, what is left), unless the next step is
  an entry point, which it must then leave with everything in memory, or
  the library lacks that variant, when it leaves everything in memory too;
* which register file the cached slots are in is chosen for the whole
  sequence at once (a shortest path over the states, by the variants' code
  size): a float stays in a float register from the op that makes it to the
  op that uses it, and an integer in an integer register.

The C stitcher does the same (jit_cache_stack); the tests hold the two to
the same choices.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import Any

from ..lang.optable import OpInfo, optable
from ..vmdef import constant
from .step import Step

DEPTH = constant("CACHE_DEPTH")  # slots the template can keep in registers (the default build's depth)
STATES = constant("CACHE_STATES")  # 0, 1..DEPTH in integer registers, then 1..DEPTH in float registers
_TRANSFERS = ("JUMP", "BRANCH", "TERMINATOR", "CALL", "RETURN")
_NAME = re.compile(r"^(.+)_([0-9]f?)([0-9]f?)$")


def count(state: int) -> int:
    """How many slots a cache state holds in registers."""
    return state - DEPTH if state > DEPTH else state


def in_floats(state: int) -> bool:
    """Whether a cache state holds its slots in the float registers."""
    return state > DEPTH


def float_state(n: int) -> int:
    """The state with n slots in the float registers (0: none cached)."""
    return DEPTH + n if n else 0


def _code(state: int) -> str:
    return f"{count(state)}f" if in_floats(state) else str(state)


def _state(code: str) -> int:
    return float_state(int(code[0])) if code.endswith("f") else int(code)


def stencil_name(op: str, cached_in: int, cached_out: int) -> str:
    """The library name of a variant (states in and out); memory to memory is the op itself."""
    if not cached_in and not cached_out:
        return op
    return f"{op}_{_code(cached_in)}{_code(cached_out)}"


def states(name: str) -> tuple[int, int]:
    """(in, out) cache states of a stencil name."""
    m = _NAME.match(name)
    if m:
        return _state(m.group(2)), _state(m.group(3))
    return 0, 0


def base_op(name: str) -> str:
    """The op a stencil name is a variant of."""
    m = _NAME.match(name)
    return m.group(1) if m else name


def library_depth(names: Iterable[str]) -> int:
    """How many slots a library's variants keep in registers."""
    return max((count(s) for n in names for s in states(n)), default=0)


def enters_in_memory(op: OpInfo) -> bool:
    """Steps of this op are always entered with the stack in memory."""
    return op.name == "EXIT"


def natural(op: OpInfo, cached_in: int, depth: int = DEPTH) -> int:
    """How many slots the op's body leaves cached when `cached_in` (a count) come in and nothing forces it."""
    if any(op.has(f) for f in _TRANSFERS) or op.pops < 0:
        return 0  # every jump leaves with the stack in memory
    left = max(cached_in - op.pops, 0)  # pops take cached slots first
    return min(depth, left + op.pushes)  # pushes keep up to `depth` in registers


def variants(op: OpInfo, depth: int = DEPTH, floats: bool = True) -> list[tuple[int, int]]:
    """The (in, out) states built for an op: those the compiler can choose.
    With `floats`, an op flagged FLOATS also has every way in and out with
    the cached slots in the float registers."""
    ins = [0] if enters_in_memory(op) else list(range(depth + 1))
    pairs = [(i, 0) for i in ins]
    pairs += [(i, natural(op, i, depth)) for i in ins if natural(op, i, depth) > 0]
    if floats and op.has("FLOATS"):
        float_ins = [] if enters_in_memory(op) else [float_state(n) for n in range(1, depth + 1)]
        leaves = {i: natural(op, count(i), depth) for i in (*ins, *float_ins)}
        pairs += [(i, 0) for i in float_ins]
        pairs += [(i, leaves[i]) for i in float_ins if leaves[i] > 0]
        pairs += [(i, float_state(n)) for i, n in leaves.items() if n > 0]
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


def _outs(op: OpInfo, cached_in: int, depth: int, forced: bool, built: Mapping[tuple[int, int], int]) -> list[int]:
    """The states a step may leave, preferred first: as many slots as the
    body naturally leaves, in either register file; everything in memory
    when the next step is an entry point or neither variant is built."""
    n = 0 if forced else natural(op, count(cached_in), depth)
    if n == 0:
        return [0]
    outs = [o for o in (n, float_state(n)) if (cached_in, o) in built]
    return outs or [0]


def assign(steps: Sequence[Step], library: Mapping[str, Any], depth: int | None = None) -> list[Step]:
    """Steps with each op replaced by the variant chosen for it.  `library`
    maps the library's stencil names to stencils (their code's size is the
    cost the choice minimises), `depth` is its library_depth (worked out if
    not given); a variant it lacks falls back to leaving the stack in memory."""
    ops = _ops()
    depth = library_depth(library) if depth is None else depth
    entries = entry_points(steps)
    built: dict[str, dict[tuple[int, int], int]] = {}  # op -> (in, out) -> code size
    for s in steps:
        if s.op not in built:
            pairs = variants(ops[s.op], depth)
            names = {p: stencil_name(s.op, *p) for p in [(0, 0), *pairs]}
            built[s.op] = {p: len(library[n].code) for p, n in names.items() if n in library}
    # Shortest path over the states: cost[state in] for the current step, and
    # for every step the state each state out was best reached from.
    cost: list[int | None] = [0] + [None] * (STATES - 1)
    came: list[list[int]] = []
    for i, s in enumerate(steps):
        op, sizes = ops[s.op], built[s.op]
        forced = i + 1 >= len(steps) or i + 1 in entries
        best: list[int | None] = [None] * STATES
        back = [-1] * STATES
        for cached_in, so_far in enumerate(cost):
            if so_far is None:
                continue
            for out in _outs(op, cached_in, depth, forced, sizes):
                size = sizes.get((cached_in, out))
                if size is None:
                    continue
                c = so_far + size
                best_out = best[out]
                if best_out is None or c < best_out:
                    best[out], back[out] = c, cached_in
        if all(c is None for c in best):
            raise KeyError(f"the library has no stencil for step {i} ({s.op}) in any state it can be entered in")
        cost = best
        came.append(back)
    chosen: list[Step] = []
    out = 0
    for i in range(len(steps) - 1, -1, -1):
        cached_in = came[i][out]
        chosen.append(replace(steps[i], op=stencil_name(steps[i].op, cached_in, out)))
        out = cached_in
    chosen.reverse()
    return chosen
