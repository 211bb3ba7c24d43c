"""Every op of an op set, checked on every engine against its reference.

For each op the module's `cases` gives small programs that run it; each is
run by the reference (Python), the C interpreter, and the stitched stencils
of every target (natively where this machine is that target, emulated
otherwise).  Any difference in the outcome (result, error, registers,
memory) is a failure naming the op, the engine and the case.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..errors import JitError
from ..targets import TARGETS, host_target, target_name
from . import OpSet, current
from .emulate import run_emulated
from .engines import Engine, Run, run, run_interp
from .model import Outcome


@dataclass(frozen=True)
class Mismatch:
    op: str
    case: str
    engine: str
    expected: Outcome
    got: Outcome | str

    def __str__(self) -> str:
        return f"{self.op} ({self.case}) on {self.engine}: expected {self.expected}, got {self.got}"


def validate(
    opset: OpSet, targets: Sequence[str] | None = None, ops: Sequence[str] | None = None, seed: int = 0
) -> tuple[int, list[Mismatch]]:
    """(programs run, mismatches) over the chosen ops (default: all) and targets (default: all)."""
    opset = current(opset)
    mod = opset.runnable()
    targets = [target_name(t) for t in targets or TARGETS]
    unknown = set(ops or ()) - set(opset.ops)
    if unknown:
        raise JitError(f"op set {opset.name} has no op {', '.join(sorted(unknown))}")
    native = host_target()
    engines: list[tuple[str, Callable[[Any], Run]]] = [("interp", partial(run_interp, opset))]
    for t in targets:
        if t == native:
            engines.append((f"jit {t}", partial(run, opset, engine=Engine.JIT)))
        else:
            engines.append((f"jit {t} (emulated)", partial(run_emulated, opset, target=t)))
    rng = random.Random(seed)
    ran, bad = 0, []
    for op in ops or opset.ops:
        for program in mod.cases(op, rng):
            expected = mod.interpret(program)
            for name, go in engines:
                ran += 1
                try:
                    got: Outcome | str = go(program).outcome
                except JitError as e:
                    got = str(e)
                if got != expected:
                    bad.append(Mismatch(op, str(program.path), name, expected, got))
    return ran, bad
