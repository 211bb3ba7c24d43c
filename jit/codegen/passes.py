"""Trace-level optimisation passes: rewrites of the step IR between forming and stitching.

A pass takes a trace's (or a whole function's) steps and returns new
steps, with, for every old step index, the index that now stands for it,
so that jump targets, exits, return points and exit records follow
(`apply`).  Passes never move code across a step that something jumps to
(an *entry*): the steps between two entries are one straight line.

Passes are named and registered here; TierConfig(passes=...) and the eager
compiler choose which run, in order, before superinstructions (jit.codegen.fuse,
itself the last pass).  `register` adds a user's own: a class with a `name`
and a `run` method.  Each built-in one is switchable, fuzzed on every engine
(tests/test_fuzz.py runs programs with all passes and with none) and
measured by `python -m jit bench --ablation`.

Built in:

* ``fold`` — constant folding: pure ops (no operand, no flags in the op
  table, one result) applied to constants become one constant, computed by
  the reference semantics (jit.lang.interp.evaluate), so the folded trace
  computes what the interpreters compute; an op that would fail is kept.
* ``known-guards`` — a guard on a constant that holds is removed with the
  constant (its exit stays, unreached); a dropped constant disappears.
* ``forward-stores`` — store→load forwarding of locals: `store n; load n`
  becomes `dup; store n`, the value kept in a register instead of read back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from ..lang.ir import OPS, bits_float, float_bits, wrap64
from .fuse import fuse
from .step import Step

Where = list[int]  # old step index -> new one (one more entry for the end)


class Pass(Protocol):
    """A rewrite of steps; `run` returns the new steps and the index map."""

    name: str

    def run(self, steps: Sequence[Step]) -> tuple[list[Step], Where]: ...


def entries(steps: Sequence[Step]) -> set[int]:
    """Step indices something jumps to (and the first): where straight lines begin."""
    found = {0}
    for s in steps:
        for x in (s.target, s.exit, s.continue_to):
            if x is not None:
                found.add(x)
    return found


def renumber(steps: list[Step], where: Where) -> list[Step]:
    """Point every target, exit and return point at the new indices."""
    for k, s in enumerate(steps):
        if s.target is not None or s.exit is not None or s.continue_to is not None:
            steps[k] = replace(
                s,
                target=None if s.target is None else where[s.target],
                exit=None if s.exit is None else where[s.exit],
                continue_to=None if s.continue_to is None else where[s.continue_to],
            )
    return steps


_INFO = {op.name: op for op in OPS}
_PURE = frozenset(op.name for op in OPS if op.operand == "NONE" and not op.flags and op.pushes == 1 and op.pops >= 1)


def _constant(s: Step) -> int | float | None:
    if s.op == "PUSH_INT":
        return s.operand0
    if s.op == "PUSH_FLOAT":
        return bits_float(s.operand0)
    return None


def _push(value: int | float, position: int) -> Step:
    if isinstance(value, float):
        return Step("PUSH_FLOAT", float_bits(value), 0, position)
    return Step("PUSH_INT", wrap64(value), 0, position)


class _Reducer:
    """A rewrite by reduction at the end of the output: each step is appended,
    then the last few are replaced while a rule matches (so folds chain);
    never across an entry.  Subclasses give `reduce`."""

    name = ""

    def reduce(self, tail: list[Step]) -> tuple[list[Step], int] | None:
        """The replacement of the last n steps of `tail`, and n; or None."""
        raise NotImplementedError

    def run(self, steps: Sequence[Step]) -> tuple[list[Step], Where]:
        starts = entries(steps)
        out: list[Step] = []
        origin: list[int] = []  # out index -> the old index it stands for (its first)
        floor = 0  # out steps before this index may not be touched (an entry follows them)
        where = [0] * (len(steps) + 1)
        for i, s in enumerate(steps):
            if i in starts:
                floor = len(out)
            where[i] = len(out)
            out.append(s)
            origin.append(i)
            while (found := self.reduce(out[floor:])) is not None:
                new, n = found
                first = origin[len(out) - n]
                del out[len(out) - n :], origin[len(origin) - n :]
                for k in range(first, i + 1):
                    where[k] = len(out)
                out.extend(new)
                origin.extend([first] * len(new))
        where[len(steps)] = len(out)
        return renumber(out, where), where


class FoldConstants(_Reducer):
    name = "fold"

    def reduce(self, tail: list[Step]) -> tuple[list[Step], int] | None:
        if not tail or tail[-1].op not in _PURE:
            return None
        op = _INFO[tail[-1].op]
        if len(tail) <= op.pops:
            return None
        values = [_constant(s) for s in tail[-1 - op.pops : -1]]
        if any(v is None for v in values):
            return None
        from ..lang.interp import evaluate  # (only when there is something to fold: start-up)

        result = evaluate(op, values)  # type: ignore[arg-type]
        if result is None or (isinstance(result, float) and math.isnan(result)):
            return None  # (fails, or a NaN whose payload the hardware decides)
        return [_push(result, tail[-1 - op.pops].position)], op.pops + 1


class KnownGuards(_Reducer):
    name = "known-guards"

    def reduce(self, tail: list[Step]) -> tuple[list[Step], int] | None:
        if len(tail) < 2 or tail[-1].op not in ("GUARD_ZERO", "GUARD_NONZERO", "DROP"):
            return None
        value = _constant(tail[-2])
        if value is None:
            return None
        if tail[-1].op == "DROP":
            return [], 2
        holds = isinstance(value, int) and (value == 0) == (tail[-1].op == "GUARD_ZERO")
        return ([], 2) if holds else None


class ForwardStores(_Reducer):
    name = "forward-stores"

    def reduce(self, tail: list[Step]) -> tuple[list[Step], int] | None:
        if len(tail) < 2 or tail[-1].op != "LOAD" or tail[-2].op != "STORE":
            return None
        store, load = tail[-2], tail[-1]
        if store.operand0 != load.operand0:
            return None
        return [Step("DUP", 0, 0, store.position), store], 2


class Superinstructions:
    """jit.codegen.fuse as a pass (always last: its stencils are no pass's input)."""

    name = "superinstructions"

    def run(self, steps: Sequence[Step]) -> tuple[list[Step], Where]:
        return fuse(steps)


PASSES: dict[str, Pass] = {}


def register(p: Pass) -> None:
    """Make a pass choosable by name (TierConfig(passes=...), prepare_eager(passes=...))."""
    if not p.name or p.name in PASSES:
        raise ValueError(f"a pass needs a new, non-empty name, not {p.name!r}")
    PASSES[p.name] = p


for _builtin in (FoldConstants(), KnownGuards(), ForwardStores()):
    register(_builtin)

DEFAULT_PASSES: tuple[str, ...] = ("fold", "known-guards", "forward-stores")


def check(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise ValueError(f"passes: no pass named {', '.join(unknown)}; choose from {', '.join(PASSES)}")


def apply(steps: Sequence[Step], names: Sequence[str], superinstructions: bool) -> tuple[list[Step], Where]:
    """Run the named passes in order, then fusion if asked; the composed index map."""
    out = list(steps)
    where = list(range(len(steps) + 1))
    chosen = [PASSES[n] for n in names]
    if superinstructions:
        chosen.append(Superinstructions())
    for p in chosen:
        out, step_map = p.run(out)
        where = [step_map[w] for w in where]
    return out, where
