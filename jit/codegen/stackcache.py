"""Stack caching: stencil variants that keep the top of the stack in registers.

Every op is also built with the top one or two slots of the operand stack
passed in pinned registers (the fourth and fifth preserve_none arguments) on
the way in, on the way out, or both (stencils/template.c, CACHE_IN and
CACHE_OUT).  A variant is named by how many slots are in registers before
and after it: ADD_21 takes two and leaves one (`add r15, rdi` on x86-64);
plain ADD is memory to memory, the stencil the interpreters' semantics are
checked against.  Each cached slot can also be held in a float register
(the last two arguments: xmm0/xmm1, d0/d1) instead: FADD_2f1f takes both
operands there and leaves the sum there, one `addsd xmm0, xmm1`.  An op
flagged FLOATS in ops.def (float arithmetic, and the ops that move slots
whatever they hold) is built for every mix of register files on either
side; any other op takes its operands from the integer registers, makes
integers, and passes the slots below its operands on in whichever file
they are in (PUSH_INT_1f2if: a float cached below, an integer pushed on
it).  How deep the cache goes, and whether it has float registers, are
build settings (jit.build.library.Variant: stack_depth, float_cache); a
library's depth shows in its names.

A cache state is a number (vm.h's CACHE_STATES of them): how many slots
are cached, and in which register files.  Its name in a stencil's is the
count, then `f` if every cached slot is in a float register, or a letter
per slot from the top (`f` float, `i` integer) if they are mixed: 0, 1, 2,
1f, 2f, 2fi, 2if.

The compiler chooses a variant for every step:

* code is only ever entered with the whole stack in memory: at the first
  step, at every jump target, side exit and return point, and at an EXIT
  (which trace linking may overwrite with a jump into another trace);
* a step starts in the state the previous one left;
* a step leaves as many slots cached as its body naturally has (after a
  push, up to the depth; after a pop, what is left), unless the next step is
  an entry point, which it must then leave with everything in memory, or
  the library lacks that variant, when it leaves everything in memory too;
* which register files the cached slots are in is chosen for the whole
  sequence at once, the cheapest path over the states: a variant costs its
  instructions, a move between register files three (Stencil.cost).  So a
  float mostly stays in a float register from the op that makes it to the
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
_TRANSFERS = ("JUMP", "BRANCH", "TERMINATOR", "CALL", "RETURN")
_NAME = re.compile(r"^(.+)_([0-9][fi]*)([0-9][fi]*)$")


def _all_states(depth: int) -> tuple[tuple[int, int], ...]:
    """Every (count, float mask) a cache can be in, bit k of the mask for the
    k-th slot from the top: all in integer registers first, then all in
    float registers, then the mixes."""
    every = [(n, 0) for n in range(depth + 1)]
    every += [(n, (1 << n) - 1) for n in range(1, depth + 1)]
    every += [(n, m) for n in range(2, depth + 1) for m in range(1, (1 << n) - 1)]
    return tuple(every)


_STATES = _all_states(DEPTH)
STATES = constant("CACHE_STATES")  # (C's table has a row this wide; tests/test_stackcache.py checks it is len(_STATES))
_NUMBER = {shape: k for k, shape in enumerate(_STATES)}


def count(state: int) -> int:
    """How many slots a cache state holds in registers."""
    return _STATES[state][0]


def float_mask(state: int) -> int:
    """Which of a state's slots are in float registers: bit k for the k-th from the top."""
    return _STATES[state][1]


def in_floats(state: int) -> bool:
    """Whether any of a state's slots is in a float register."""
    return _STATES[state][1] != 0


def state_of(n: int, mask: int = 0) -> int:
    """The state with n slots cached, those in `mask` in float registers."""
    return _NUMBER[n, mask & ((1 << n) - 1)]


def float_state(n: int) -> int:
    """The state with n slots, all in float registers (0: none cached)."""
    return state_of(n, (1 << n) - 1)


def _code(state: int) -> str:
    n, mask = _STATES[state]
    if mask == 0:
        return str(n)
    if mask == (1 << n) - 1:
        return f"{n}f"
    return str(n) + "".join("f" if mask >> k & 1 else "i" for k in range(n))


def stencil_name(op: str, cached_in: int, cached_out: int) -> str:
    """The library name of a variant (states in and out); memory to memory is the op itself."""
    if not cached_in and not cached_out:
        return op
    return f"{op}_{_code(cached_in)}{_code(cached_out)}"


_CODES = {_code(k): k for k in range(len(_STATES))}


def _split(name: str) -> tuple[str, int, int] | None:
    """(op, in, out) of a variant's name; None if it names no variant (a
    plain op, or another op set's stencil that ends in digits, like ADD_64)."""
    m = _NAME.match(name)
    if m and m.group(2) in _CODES and m.group(3) in _CODES:
        return m.group(1), _CODES[m.group(2)], _CODES[m.group(3)]
    return None


def states(name: str) -> tuple[int, int]:
    """(in, out) cache states of a stencil name."""
    split = _split(name)
    return (split[1], split[2]) if split else (0, 0)


def base_op(name: str) -> str:
    """The op a stencil name is a variant of."""
    split = _split(name)
    return split[0] if split else name


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


@cache  # (a library's cache key lists every variant: worked out once a process)
def variants(op: OpInfo, depth: int = DEPTH, floats: bool = True) -> tuple[tuple[int, int], ...]:
    """The (in, out) states built for an op: those the compiler can choose.
    With `floats`, cached slots may also be in float registers: for an op
    flagged FLOATS, any of them on either side; for any other op, only the
    slots below its operands, which it passes on as they are."""
    ins = [0] if enters_in_memory(op) else list(range(depth + 1))
    pairs = [(i, 0) for i in ins]
    pairs += [(i, natural(op, i, depth)) for i in ins if natural(op, i, depth) > 0]
    if not floats or enters_in_memory(op):
        return tuple(pairs)
    free = op.has("FLOATS")
    for i in range(STATES):
        n_in, mask_in = _STATES[i]
        popped = n_in if op.pops < 0 else min(op.pops, n_in)
        if n_in > depth or (not free and mask_in & ((1 << popped) - 1)):
            continue  # (an integer op takes its operands from the integer registers)
        n = natural(op, n_in, depth)
        made = min(op.pushes, n)  # the slots out that the op makes; below them, the ones it left
        carried = mask_in >> popped
        outs = [0] + [state_of(n, carried << made | new) for new in (range(1 << made) if free else [0]) if n]
        pairs += [(i, o) for o in outs if (i, o) not in pairs and (in_floats(i) or in_floats(o))]
    return tuple(pairs)


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
    """The states a step may leave, in the order they are tried: as many
    slots as the body naturally leaves, in any register files a built
    variant has; everything in memory when the next step is an entry point
    or no such variant is built."""
    n = 0 if forced else natural(op, count(cached_in), depth)
    outs = [o for o in range(STATES) if n and count(o) == n and (cached_in, o) in built]
    return outs or [0]


def assign(steps: Sequence[Step], library: Mapping[str, Any], depth: int | None = None) -> list[Step]:
    """Steps with each op replaced by the variant chosen for it.  `library`
    maps the library's stencil names to stencils (their cost is what the
    choice minimises), `depth` is its library_depth (worked out if
    not given); a variant it lacks falls back to leaving the stack in memory."""
    ops = _ops()
    depth = library_depth(library) if depth is None else depth
    entries = entry_points(steps)
    built: dict[str, dict[tuple[int, int], int]] = {}  # op -> (in, out) -> cost
    for s in steps:
        if s.op not in built:
            pairs = variants(ops[s.op], depth)
            names = {p: stencil_name(s.op, *p) for p in [(0, 0), *pairs]}
            built[s.op] = {p: library[n].cost for p, n in names.items() if n in library}
    # Cheapest path over the states: cost[state in] for the current step, and
    # for every step the state each state out was best reached from.
    cost: list[int | None] = [0] + [None] * (STATES - 1)
    came: list[list[int]] = []
    for i, s in enumerate(steps):
        op, costs = ops[s.op], built[s.op]
        forced = i + 1 >= len(steps) or i + 1 in entries
        best: list[int | None] = [None] * STATES
        back = [-1] * STATES
        for cached_in, so_far in enumerate(cost):
            if so_far is None:
                continue
            for out in _outs(op, cached_in, depth, forced, costs):
                step_cost = costs.get((cached_in, out))
                if step_cost is None:
                    continue
                c = so_far + step_cost
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
