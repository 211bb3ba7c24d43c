"""Stack caching: the variant chosen for every step keeps the stack consistent,
the C pass chooses what the Python reference chooses, and it pays off."""

from __future__ import annotations

import pytest

from jit.cstitch import plans_for
from jit.native import program_steps
from jit.optable import optable
from jit.paths import ROOT
from jit.stackcache import assign, base_op, entry_points, stencil_name, variants
from jit.tiering import TierConfig, prepare_tiered
from jit.uop import parse_file

PROGRAMS = sorted(p.stem for p in (ROOT / "bench" / "programs").glob("*.uop"))
SMALL = {"nbody": 3, "fannkuch": 5, "spectralnorm": 4, "mandelbrot": 8}
SMALL |= {"sieve": 100, "fib": 8, "branchy": 200, "count": 100}


def _states(name: str) -> tuple[int, int]:
    """(in, out) of a stencil name: 0 memory, 1 register."""
    suffix = name[len(base_op(name)) :]
    return (0, 0) if not suffix else ("MR".index(suffix[1]), "MR".index(suffix[2]))


def _step_lists(name: str) -> list[list]:
    """The program compiled whole, and every trace the tiered engine makes of it."""
    program = parse_file(ROOT / "bench" / "programs" / f"{name}.uop")
    lists = [program_steps(program)]
    config = TierConfig(hot_loop=1, hot_exit=1, max_trace=200)
    prepare_tiered(program, [SMALL[name]], config, on_compile=lambda code, shape, side: lists.append(shape.steps))()
    return lists


def _check_consistent(steps, chosen) -> None:
    entries = entry_points(steps)
    state = 0
    for i, (step, name) in enumerate(zip(steps, chosen, strict=True)):
        assert base_op(name) == step.op
        cached_in, cached_out = _states(name)
        if i in entries:
            assert cached_in == 0, (i, name)  # every way in finds the stack in memory
        else:
            assert cached_in == state, (i, name)  # it takes the top where the step before left it
        state = cached_out
    assert state == 0


@pytest.mark.parametrize("name", PROGRAMS)
def test_c_chooses_what_python_chooses_and_the_stack_stays_consistent(libraries, name):
    for steps in _step_lists(name):
        for lib in libraries.values():
            python = [s.op for s in assign(steps, lib.ops)]
            plans = plans_for(lib)
            packed = plans.pack(steps)
            plans.cache_stack(packed)
            assert plans.stencils(packed) == python
            _check_consistent(steps, python)


def test_arithmetic_keeps_its_top_in_the_register(library):
    """nbody's traces are float arithmetic: most steps find the top in the register."""
    traces = _step_lists("nbody")[1:]
    chosen = [[s.op for s in assign(steps, library.ops)] for steps in traces]
    cached = sum(_states(n)[0] for names in chosen for n in names)
    assert cached >= 0.6 * sum(map(len, chosen))
    plain = sum(len(library.ops[s.op].code) for steps in traces for s in steps)
    assert sum(len(library.ops[n].code) for names in chosen for n in names) < plain  # and the code is smaller


def test_a_missing_variant_falls_back_to_the_stack_in_memory(library):
    ops = {n: s for n, s in library.ops.items() if not n.endswith("_MR")}
    steps = program_steps(parse_file(ROOT / "bench" / "programs" / "count.uop"))
    chosen = [s.op for s in assign(steps, ops)]
    assert all(n in ops for n in chosen)
    _check_consistent(steps, chosen)  # with no way into the register, nothing is ever cached
    assert all(_states(n) == (0, 0) for n in chosen)


def test_every_op_can_be_entered_either_way_except_exit():
    for op in optable():
        ins = {i for i, _ in variants(op)}
        assert ins == ({0} if op.name == "EXIT" else {0, 1}), op.name
        assert stencil_name(op.name, 0, 0) == op.name
