"""Trace-level optimisation passes: rewrites of the step IR between forming and stitching.

A pass takes a trace's (or a whole function's) steps and returns new
steps, with, for every old step index, the index that now stands for it,
so that jump targets, exits, return points and exit records follow
(`apply`).  Passes never move code across a step that something jumps to
(an *entry*): the steps between two entries are one straight line.

Passes are named and registered here; TierConfig(passes=...) and the eager
compiler choose which run, in order, before superinstructions (jit.codegen.fuse,
itself the last pass).  Copy-and-patch runs `registers` by default
(DEFAULT_PASSES, and why), which stencils/form.c also runs as it forms.
`register` adds a user's own: a class with a `name` and a `run` method.
Each built-in one is switchable, fuzzed on every engine (tests/test_fuzz.py
runs programs with all of them and with each alone) and measured by
`python -m jit bench --ablation`.

Built in:

* ``fold`` — constant folding: pure ops (no operand, no flags in the op
  table, one result) applied to constants become one constant, computed by
  the reference semantics (jit.lang.interp.evaluate), so the folded trace
  computes what the interpreters compute; an op that would fail is kept.
* ``known-guards`` — a guard on a constant that holds is removed with the
  constant (its exit stays, unreached); a dropped constant disappears.
* ``forward-stores`` — store→load forwarding of locals: `store n; load n`
  becomes `dup; store n`, the value kept in a register instead of read back.
* ``hoist-bounds`` — bounds-check hoisting for loop-invariant ranges: a
  trace whose memory ops index with a local it never stores (plus a
  constant) checks those ranges once on the way in and runs a copy of
  itself without the checks; a loop trace, once per entry rather than once
  per pass (HoistBounds).
* ``registers`` — locals in registers: in a loop, the most used integer
  locals live in pinned registers, filled where the frame's code is
  entered and spilled before it leaves for code that reads the frame
  (Registers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..lang.ir import OPS, bits_float, float_bits, wrap64
from ..vmdef import constant
from .fuse import fuse
from .step import Step, Where, entries, renumber


class Pass(Protocol):
    """A rewrite of steps; `run` returns the new steps and the index map."""

    name: str

    def run(self, steps: Sequence[Step]) -> tuple[list[Step], Where]: ...


_INFO = {op.name: op for op in OPS}
_PURE = frozenset(op.name for op in OPS if op.pure)


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


class Rule:
    """A peephole pass: a rewrite of the last few steps of the output, tried
    each time a step whose op is in `triggers` is appended (so rewrites
    chain: a fold's result can fold again); never across an entry.
    Consecutive rules share one scan of the steps (`apply`)."""

    name = ""
    triggers: frozenset[str] = frozenset()

    def reduce(self, out: list[Step], floor: int) -> tuple[list[Step], int] | None:
        """The replacement of the last n steps of `out` (none of them before
        index `floor`), and n; or None."""
        raise NotImplementedError

    def run(self, steps: Sequence[Step]) -> tuple[list[Step], Where]:
        return scan(steps, [self])


def scan(steps: Sequence[Step], rules: Sequence[Rule]) -> tuple[list[Step], Where]:
    """One pass over the steps applying every rule where it matches."""
    starts = entries(steps)
    triggers = frozenset().union(*(r.triggers for r in rules))
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
        while out and out[-1].op in triggers:
            last = out[-1].op
            found = next((f for r in rules if last in r.triggers and (f := r.reduce(out, floor)) is not None), None)
            if found is None:
                break
            new, n = found
            first = origin[len(out) - n]
            del out[len(out) - n :], origin[len(origin) - n :]
            for k in range(first, i + 1):
                where[k] = len(out)
            out.extend(new)
            origin.extend([first] * len(new))
    where[len(steps)] = len(out)
    return renumber(out, where), where


class FoldConstants(Rule):
    name = "fold"
    triggers = _PURE

    def reduce(self, out: list[Step], floor: int) -> tuple[list[Step], int] | None:
        op = _INFO[out[-1].op]
        first = len(out) - 1 - op.pops
        if first < floor:
            return None
        values = [_constant(s) for s in out[first:-1]]
        if any(v is None for v in values):
            return None
        from ..lang.interp import evaluate  # (only when there is something to fold: start-up)

        result = evaluate(op, values)  # type: ignore[arg-type]
        if result is None or (isinstance(result, float) and math.isnan(result)):
            return None  # (fails, or a NaN whose payload the hardware decides)
        return [_push(result, out[first].position)], op.pops + 1


class KnownGuards(Rule):
    name = "known-guards"
    triggers = frozenset({"GUARD_ZERO", "GUARD_NONZERO", "DROP"})

    def reduce(self, out: list[Step], floor: int) -> tuple[list[Step], int] | None:
        if len(out) - 2 < floor:
            return None
        value = _constant(out[-2])
        if value is None:
            return None
        if out[-1].op == "DROP":
            return [], 2
        holds = isinstance(value, int) and (value == 0) == (out[-1].op == "GUARD_ZERO")
        return ([], 2) if holds else None


class ForwardStores(Rule):
    name = "forward-stores"
    triggers = frozenset({"LOAD"})

    def reduce(self, out: list[Step], floor: int) -> tuple[list[Step], int] | None:
        if len(out) - 2 < floor or out[-2].op != "STORE" or out[-2].operand0 != out[-1].operand0:
            return None
        return [Step("DUP", 0, 0, out[-2].position), out[-2]], 2


@dataclass(frozen=True)
class _Plus:
    """A value hoist-bounds knows: a local (of the loop's frame) plus a constant."""

    local: int
    offset: int


_Known = _Plus | int | None  # (an int: a constant; None: anything)
_HOISTABLE = 1 << 31  # offsets this far from zero at most: no sum of two wraps


def _body_end(steps: Sequence[Step]) -> int | None:
    """The index of the step that ends a trace's straight line (its
    closing or linking JUMP, its EXIT, or the RET out of its frame), when
    `steps` are a trace's: no jumps inside, calls inlined (each goes to
    the next step), only exit stubs after it."""
    depth = 0
    for i, s in enumerate(steps):
        if s.op in ("JZ", "JNZ") or (s.op == "CALL" and s.target != i + 1):
            return None
        depth += 1 if s.op == "CALL" else -1 if s.op == "RET" else 0
        if s.op in ("JUMP", "EXIT") or depth < 0:
            return i if all(t.op in ("TAKE_EXIT", "EXIT") for t in steps[i + 1 :]) else None
    return None


def _sum(a: _Known, b: _Known, sign: int) -> _Known:
    """a + b (sign 1) or a - b (sign -1), where a local plus a constant stays one."""
    if isinstance(a, int) and isinstance(b, int):
        return wrap64(a + sign * b)
    if isinstance(a, _Plus) and isinstance(b, int):
        local, offset = a.local, a.offset + sign * b
    elif isinstance(a, int) and isinstance(b, _Plus) and sign > 0:
        local, offset = b.local, b.offset + a
    else:
        return None
    return _Plus(local, offset) if abs(offset) < _HOISTABLE else None


def _indexed(body: Sequence[Step]) -> dict[int, _Plus]:
    """The memory ops of a trace's straight line (in the trace's own
    frame) whose index is a local plus a constant, by step; those of
    locals the line stores are left out.  (CALL and RET, the only ops
    whose stack effect depends on the operand, are taken first.)"""
    stack: list[_Known] = []
    stored: set[int] = set()
    found: dict[int, _Plus] = {}
    depth = 0  # inlined calls open

    def pop() -> _Known:
        return stack.pop() if stack else None

    for i, s in enumerate(body):
        if s.op in ("CALL", "RET"):  # (the callee's steps work on its own frame; what it leaves is unknown)
            depth += 1 if s.op == "CALL" else -1
            if depth < 0:  # (out of the trace's frame: its last step)
                break
            stack = []
            continue
        if depth:
            continue
        op = _INFO[s.op]
        if s.op == "LOAD":
            stack.append(_Plus(s.operand0, 0))
        elif s.op == "PUSH_INT":
            stack.append(s.operand0)
        elif s.op in ("ADD", "SUB"):
            b, a = pop(), pop()
            stack.append(_sum(a, b, 1 if s.op == "ADD" else -1))
        elif s.op == "DUP":
            top = pop()
            stack += [top, top]
        elif s.op == "SWAP":
            b, a = pop(), pop()
            stack += [b, a]
        elif s.op == "OVER":
            b, a = pop(), pop()
            stack += [a, b, a]
        else:
            if s.op == "STORE":
                stored.add(s.operand0)
            popped = [pop() for _ in range(op.pops)]
            index = popped[0] if s.op == "MLOAD" else popped[1] if s.op == "MSTORE" else None
            if isinstance(index, _Plus):
                found[i] = index
            stack += [None] * op.pushes
    return {i: at for i, at in found.items() if at.local not in stored}


class HoistBounds:
    """Bounds-check hoisting for loop-invariant ranges (``hoist-bounds``).

    In a trace, a memory op whose index is a local the trace never stores,
    plus a constant, touches the same range wherever it runs: in a loop
    trace, on every pass.  The trace is versioned: on the way in,
    CHECK_INDEX checks each such local at the smallest and largest
    constant it is used with; if all are in range, a copy of the trace
    runs without those ops' checks (MLOAD_IN_RANGE, MSTORE_IN_RANGE), and
    otherwise the trace as it was, which fails where the interpreter
    would.  Both copies leave through the same exit stubs.  A loop trace
    checks once per entry instead of once per pass; another trace only
    when that makes fewer checks (more accesses than guards)."""

    name = "hoist-bounds"

    def run(self, steps: Sequence[Step]) -> tuple[list[Step], Where]:
        unchanged = list(steps), list(range(len(steps) + 1))
        end = _body_end(steps)
        found = {} if end is None else _indexed(steps[: end + 1])
        if end is None or not found:
            return unchanged
        ranges: dict[int, tuple[int, int]] = {}
        for at in found.values():
            low, high = ranges.get(at.local, (at.offset, at.offset))
            ranges[at.local] = (min(low, at.offset), max(high, at.offset))
        checks = [(local, offset) for local, (low, high) in sorted(ranges.items()) for offset in sorted({low, high})]
        loop = steps[end].op == "JUMP" and steps[end].target == 0
        if not loop and len(found) <= len(checks):
            return unchanged
        body, stubs = end + 1, list(steps[end + 1 :])
        fast, slow = len(checks), len(checks) + body
        first_stub = slow + body

        def moved(base: int, k: int | None) -> int | None:
            return None if k is None else base + k if k < body else first_stub + k - body

        def copy(base: int, s: Step, op: str) -> Step:
            return Step(
                op,
                s.operand0,
                s.operand1,
                s.position,
                moved(base, s.target),
                moved(base, s.exit),
                s.target_address,
                moved(base, s.continue_to),
                s.operand2,
                s.operand3,
            )

        position = steps[0].position
        out = [Step("CHECK_INDEX", local, offset, position, target=slow) for local, offset in checks]
        out += [copy(fast, s, f"{s.op}_IN_RANGE" if i in found else s.op) for i, s in enumerate(steps[:body])]
        out += [copy(slow, s, s.op) for s in steps[:body]]
        out += stubs
        where = [fast + i for i in range(body)] + [first_stub + k for k in range(len(stubs))] + [len(out)]
        return out, where


LOCAL_REGS = constant("LOCAL_REGS")  # registers compiled code can keep locals in (stencils/vm.h)
REGISTER_OPS = frozenset(
    f"{kind}_R{j}" for kind in ("LOAD", "STORE", "FILL", "SPILL", "INC") for j in range(LOCAL_REGS)
)  # (INC_Rj: fuse.py's, of load_rj; push_int; add; store_rj)
_TRANSFERS = frozenset({"JUMP", "CALL", "RETURN", "TERMINATOR"})
_MAKE_FLOATS = frozenset({"PUSH_FLOAT", "FADD", "FSUB", "FMUL", "FDIV", "FNEG", "FSQRT", "ITOF"})
FLOAT_CLEARS, FLOAT_TAKES, FLOAT_MAKES = (constant(n) for n in ("FLOAT_CLEARS", "FLOAT_TAKES", "FLOAT_MAKES"))
# Per op, what the scan for float locals sees in it (vm.h's FLOAT_* bits;
# form.c reads the same table): the stack is unknown after it, it reads
# floats from what it pops, what it pushes is a float.
FLOAT_USE: dict[str, int] = {
    op.name: (FLOAT_CLEARS if op.pops < 0 or (op.flags & _TRANSFERS and not op.has("BRANCH")) else 0)
    | (FLOAT_TAKES if op.mnemonic.startswith("f") or op.name == "PRINT_FLOAT" else 0)
    | (FLOAT_MAKES if op.name in _MAKE_FLOATS else 0)
    for op in OPS
}


def _float_locals(steps: Sequence[Step]) -> set[int]:
    """The locals that hold floats, as far as one scan can tell: those a
    float op reads straight from a LOAD, or a STORE takes from a float op.
    (A float local stays in memory: the float ops read it there directly,
    fused, where a register would be an integer one.)"""
    found: set[int] = set()
    starts = entries(steps)
    stack: list[int | str | None] = []  # per slot: the local it was loaded from, "f" a float, or unknown
    for i, s in enumerate(steps):
        if i in starts:
            stack = []
        op, use = _INFO[s.op], FLOAT_USE[s.op]
        if s.op == "LOAD":
            stack.append(s.operand0)
            continue
        if use & FLOAT_CLEARS:
            stack = []
            continue
        popped = [stack.pop() if stack else None for _ in range(op.pops)]
        if s.op in ("DUP", "SWAP", "OVER"):
            b = popped[0]
            a = popped[1] if len(popped) > 1 else None
            stack += {"DUP": [b, b], "SWAP": [b, a], "OVER": [a, b, a]}[s.op]
            continue
        if s.op == "STORE" and popped[0] == "f":
            found.add(s.operand0)
        if use & FLOAT_TAKES:
            found.update(p for p in popped if isinstance(p, int))
        stack += ["f" if use & FLOAT_MAKES else None] * op.pushes
    return found


def _stub(steps: Sequence[Step], i: int) -> bool:
    """Whether step i begins an exit stub (TAKE_EXIT then EXIT, or a lone EXIT)."""
    return steps[i].op == "TAKE_EXIT" or (steps[i].op == "EXIT" and (i == 0 or steps[i - 1].op != "TAKE_EXIT"))


class Registers:
    """Locals in registers (``registers``): the locals a function or a
    trace uses most live in pinned registers (vm.h's LOCAL_REGS) instead of
    its frame, so a loop's counter is never stored and reloaded.

    Code is divided into regions, one per frame: a trace, a compiled
    function, or each function of an eager program (from the first step, or
    a call's target, to the next).  In each region with a loop, the
    LOCAL_REGS integer locals that LOAD and STORE reach most often get a
    register, if they are reached more often than the region's calls
    would fill and spill them (straight-line code gains nothing: a fill
    and a spill cost what the loads and stores did): FILL_Rj loads it
    where the frame's code is entered (its first step, which calls enter,
    and after each call, where the callee returns), LOAD_Rj and STORE_Rj
    stand for the loads and stores, and SPILL_Rj writes the locals the
    region stores back before every way out to code that reads the frame:
    an exit stub (to tier 1, or the trace linking re-points it at), a jump
    into another trace, and a call (the callee uses the registers itself).
    Jumps inside a region keep the registers: a loop back to a region's
    first step lands after its fills.  A return or a halt leaves nothing
    to write back: the frame is gone.  Errors end the run, and what they
    report comes from the stack, not the locals.  A trace with an inlined
    call (whose steps work on another frame) is left as it is."""

    name = "registers"

    def run(self, steps: Sequence[Step]) -> tuple[list[Step], Where]:
        unchanged = list(steps), list(range(len(steps) + 1))
        n = len(steps)
        if not n or any(s.op in REGISTER_OPS for s in steps):
            return unchanged
        calls = [i for i, s in enumerate(steps) if s.op == "CALL"]
        if any(steps[i].target in (None, i + 1) for i in calls):  # (inlined, or returning through a stub)
            return unchanged
        by_call = {steps[i].target for i in calls}
        starts = sorted({0} | {t for t in by_call if t is not None and not _stub(steps, t)})
        jumped = {t for i, s in enumerate(steps) if s.op != "CALL" for t in (s.target, s.exit) if t is not None}
        if any(t in jumped for t in by_call if t is not None and _stub(steps, t)):
            return unchanged  # (a stub both a call and a jump leave through: not made by the formers)
        region = [0] * n  # step -> index in `starts` of the region it belongs to
        r = 0
        for i in range(n):
            while r + 1 < len(starts) and starts[r + 1] <= i:
                r += 1
            region[i] = r
        uses: list[dict[int, int]] = [{} for _ in starts]
        stored: list[set[int]] = [set() for _ in starts]
        for i, s in enumerate(steps):
            if s.op in ("LOAD", "STORE"):
                u = uses[region[i]]
                u[s.operand0] = u.get(s.operand0, 0) + 1
                if s.op == "STORE":
                    stored[region[i]].add(s.operand0)
        loops = {region[i] for i, s in enumerate(steps) if s.op != "CALL" and s.target is not None and s.target <= i}
        calls_in = [0] * len(starts)
        for i in calls:
            calls_in[region[i]] += 1
        floats = _float_locals(steps)
        chosen: list[dict[int, int]] = []  # per region: local -> register
        for r, u in enumerate(uses):
            # (each call costs a fill after it, and a spill before it if the region stores the local)
            worth = [
                x for x, k in u.items() if r in loops and x not in floats and k > calls_in[r] * (1 + (x in stored[r]))
            ]
            best = sorted(worth, key=lambda x: (-u[x], x))
            chosen.append({local: j for j, local in enumerate(best[:LOCAL_REGS])})
        if not any(chosen):
            return unchanged

        def fills(r: int, position: int) -> list[Step]:
            return [Step(f"FILL_R{j}", local, 0, position) for local, j in chosen[r].items()]

        def spills(r: int, position: int) -> list[Step]:
            return [Step(f"SPILL_R{j}", local, 0, position) for local, j in chosen[r].items() if local in stored[r]]

        out: list[Step] = []
        where = [0] * (n + 1)  # old step -> the step that stands for it (what exits record)
        landing = [0] * (n + 1)  # old step -> where a jump to it lands
        entered = [0] * (n + 1)  # old step -> where a call of it lands (its region's fills)
        for i, s in enumerate(steps):
            r, regs = region[i], chosen[region[i]]
            entered[i] = len(out)
            if i in starts:
                out += fills(r, s.position)
            leaves = _stub(steps, i) and i not in by_call  # (an exit stub a call goes through is the callee's)
            if leaves or (s.op == "JUMP" and s.target_address is not None):
                out += spills(r, s.position)
            landing[i] = entered[i] if i not in starts else len(out)
            if s.op == "CALL":
                out += spills(r, s.position)
            where[i] = len(out)
            if s.op in ("LOAD", "STORE") and s.operand0 in regs:
                out.append(Step(f"{s.op}_R{regs[s.operand0]}", 0, 0, s.position))
            else:
                out.append(s)
            if s.op == "CALL":
                out += fills(r, s.position)
        where[n] = landing[n] = entered[n] = len(out)
        for k, s in enumerate(out):
            if s.target is not None or s.exit is not None:
                target = s.target
                if target is not None:
                    target = entered[target] if s.op == "CALL" else landing[target]
                out[k] = Step(
                    s.op,
                    s.operand0,
                    s.operand1,
                    s.position,
                    target,
                    None if s.exit is None else landing[s.exit],
                    s.target_address,
                    None if s.continue_to is None else landing[s.continue_to],
                    s.operand2,
                    s.operand3,
                )
        return out, where


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


for _builtin in (FoldConstants(), KnownGuards(), ForwardStores(), HoistBounds(), Registers()):
    register(_builtin)

BUILTIN_PASSES: tuple[str, ...] = ("fold", "known-guards", "forward-stores", "hoist-bounds", "registers")
# What copy-and-patch compiles run when no passes are chosen (eager and
# tiered; a backend may run others: Backend.default_passes, none for the
# LLVM peer): `registers`, which form.c runs too, so tiered compiles stay
# in C.  The others find little to rewrite in the bundled programs and send
# forming to Python, whose compile time makes tiered runs slower (bench
# --ablation, docs/benchmarks.md); they are there to be chosen and built on.
DEFAULT_PASSES: tuple[str, ...] = ("registers",)
# The passes stencils/form.c also runs, as it forms (its `registers`
# switch): forming stays in C when the passes chosen are none or these.
C_PASSES: tuple[str, ...] = ("registers",)


def formed_in_c(names: Sequence[str]) -> bool:
    """Whether form.c can form with these passes (then its registers switch is bool(names))."""
    return tuple(names) in ((), C_PASSES)


def check(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise ValueError(f"passes: no pass named {', '.join(unknown)}; choose from {', '.join(PASSES)}")


def apply(steps: Sequence[Step], names: Sequence[str], superinstructions: bool) -> tuple[list[Step], Where]:
    """Run the named passes in order, then fusion if asked; the composed index map."""
    out = list(steps)
    where = list(range(len(steps) + 1))
    chosen: list[Pass] = [PASSES[n] for n in names]
    if superinstructions:
        chosen.append(Superinstructions())
    k = 0
    while k < len(chosen):
        batch: list[Rule] = []
        while k < len(chosen) and isinstance(chosen[k], Rule):  # (consecutive rules: one scan)
            batch.append(chosen[k])  # type: ignore[arg-type]
            k += 1
        if batch:
            out, step_map = scan(out, batch)
        else:
            out, step_map = chosen[k].run(out)
            k += 1
        where = [step_map[w] for w in where]
    return out, where
