"""Stack caching: the variant chosen for every step keeps the stack consistent,
the C pass chooses what the Python reference chooses, and it pays off."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from jit.codegen.cstitch import plans_for
from jit.codegen.stackcache import (
    DEPTH,
    STATES,
    _all_states,
    assign,
    base_op,
    count,
    entry_points,
    float_state,
    in_floats,
    library_depth,
    natural,
    stencil_name,
    variants,
)
from jit.codegen.stackcache import states as _states
from jit.codegen.stitch import layout
from jit.codegen.trace import program_steps
from jit.lang.optable import optable
from jit.lang.uop import parse_file
from jit.paths import ROOT
from jit.runtime.tiering import TierConfig, prepare_tiered

PROGRAMS = sorted(p.stem for p in (ROOT / "bench" / "programs").glob("*.uop"))
SMALL = {"nbody": 3, "fannkuch": 5, "spectralnorm": 4, "mandelbrot": 8}
SMALL |= {"sieve": 100, "fib": 8, "branchy": 200, "count": 100}


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
            planned, lay = plans.plan(steps)  # (jit_plan: the same choice, and the layout of what it chose)
            assert plans.stencils(planned) == python
            chosen = [replace(s, op=op) for s, op in zip(steps, python, strict=True)]
            assert list(lay.code_offsets) == list(layout(lib, chosen).code_offsets)


def test_arithmetic_keeps_its_top_in_the_register(library):
    """nbody's traces are float arithmetic: most steps find the top in the register."""
    traces = _step_lists("nbody")[1:]
    chosen = [[s.op for s in assign(steps, library.ops)] for steps in traces]
    cached = sum(_states(n)[0] > 0 for names in chosen for n in names)
    assert cached >= 0.6 * sum(map(len, chosen))
    both = sum(count(_states(n)[0]) == 2 for names in chosen for n in names)
    assert both >= 0.2 * sum(map(len, chosen))  # binary ops find both operands in registers
    plain = sum(len(library.ops[s.op].code) for steps in traces for s in steps)
    assert sum(len(library.ops[n].code) for names in chosen for n in names) < plain  # and the code is smaller


def test_floats_stay_in_float_registers_from_op_to_op(library):
    """The float programs' arithmetic takes both its operands from, and
    leaves its result in, the float registers, nearly always, and the code
    costs less (and is smaller) than with the integer registers alone (the
    library without its float variants, as Variant(float_cache=False) builds
    it: the same stencils, compiled alike, less those)."""
    plain = SimpleNamespace(ops={n: st for n, st in library.ops.items() if not any(map(in_floats, _states(n)))})
    assert len(plain.ops) == sum(len(variants(op, floats=False)) for op in optable())
    arithmetic, all_floats = 0, 0
    for name in ("nbody", "mandelbrot", "spectralnorm"):
        traces = _step_lists(name)
        chosen = [[library.ops[s.op] for s in assign(steps, library.ops)] for steps in traces]
        ops = [st.name for sts in chosen for st in sts if base_op(st.name) in ("FADD", "FSUB", "FMUL", "FDIV")]
        arithmetic += len(ops)
        # (the state in has the operands in the float registers: both, or the one cached)
        all_floats += sum(_states(n)[0] in (float_state(1), float_state(2)) for n in ops)
        without = [plain.ops[s.op] for steps in traces for s in assign(steps, plain.ops)]
        assert sum(st.cost for sts in chosen for st in sts) < sum(st.cost for st in without), name
        assert sum(len(st.code) for sts in chosen for st in sts) < sum(len(st.code) for st in without), name
    assert all_floats >= 0.85 * arithmetic


def test_the_choice_is_the_cheapest_code(library):
    """The register files are chosen for a whole sequence at once: on random
    straight-line sequences, no other way through the states the choice may
    take (as many slots as each body leaves, in any files) costs less
    (Stencil.cost: instructions, a move between files three).  Checked by
    trying every way."""
    import random

    from jit.codegen.step import Step

    ops = {op.name: op for op in optable()}
    pool = ["LOAD", "PUSH_FLOAT", "PUSH_INT", "FADD", "FMUL", "FSUB", "ADD", "MLOAD", "STORE", "DUP", "SWAP"]
    pool += ["ITOF", "FTOI", "LOAD2", "FMUL_L", "FADD_LL", "FLT", "NEG", "STORE_LOAD", "LOAD_ADDK", "FNEG", "JZ"]
    rng = random.Random(7)
    sizes = {n: st.cost for n, st in library.ops.items()}

    def cheapest(names: list[str], at: int, state: int) -> int | None:
        if at == len(names):
            return 0 if state == 0 else None
        op = ops[names[at]]
        last = at + 1 == len(names)
        n = 0 if last else natural(op, count(state), DEPTH)
        outs = [o for o in range(STATES) if n and count(o) == n and stencil_name(op.name, state, o) in sizes] or [0]
        best = None
        for out in outs:
            name = stencil_name(op.name, state, out)
            if name not in sizes:
                continue
            rest = cheapest(names, at + 1, out)
            if rest is not None and (best is None or sizes[name] + rest < best):
                best = sizes[name] + rest
        return best

    for _ in range(200):
        names = [rng.choice(pool) for _ in range(rng.randrange(2, 11))]
        steps = [Step(n, 1, 2, 0) for n in names]
        chosen = assign(steps, library.ops)
        _check_consistent(steps, [s.op for s in chosen])
        assert sum(sizes[s.op] for s in chosen) == cheapest(names, 0, 0), names


def test_a_missing_variant_falls_back_to_the_stack_in_memory(library):
    ops = {n: s for n, s in library.ops.items() if _states(n)[0] > 0 or _states(n) == (0, 0)}
    steps = program_steps(parse_file(ROOT / "bench" / "programs" / "count.uop"))
    chosen = [s.op for s in assign(steps, ops)]
    assert all(n in ops for n in chosen)
    _check_consistent(steps, chosen)  # with no way into the register, nothing is ever cached
    assert all(_states(n) == (0, 0) for n in chosen)


def test_every_op_can_be_entered_every_way_except_exit(library):
    assert library_depth(library.ops) == DEPTH == 2
    assert STATES == len(_all_states(DEPTH)) == 7  # vm.h's CACHE_STATES, as the Python side numbers them
    for op in optable():
        ins = {i for i, _ in variants(op)}
        if op.name == "EXIT":
            assert ins == {0}
        elif op.has("FLOATS") or op.pops == 0:  # (an op that pops nothing passes every cached slot on)
            assert ins == set(range(STATES)), op.name
        else:
            assert {0, 1, 2} <= ins < set(range(STATES)), op.name
        assert stencil_name(op.name, 0, 0) == op.name
        for i, o in variants(op):
            assert _states(stencil_name(op.name, i, o)) == (i, o)
            assert base_op(stencil_name(op.name, i, o)) == op.name
    # another op set's name that ends in digits names no variant (eBPF's movsx64 from 16 bits)
    assert (_states("MOVSX64_16"), base_op("MOVSX64_16")) == ((0, 0), "MOVSX64_16")


def test_a_shallower_cache_is_a_build_setting():
    """Variant(stack_depth=1): one register; the choices never go deeper,
    and the C pass still makes the Python reference's.  (The choice reads
    the same table on every target: one target shows it.)"""
    from jit.build.library import Variant, load_library

    lib = load_library("x86_64-linux", Variant(stack_depth=1))
    assert library_depth(lib.ops) == 1
    deepest = 0
    for steps in _step_lists("spectralnorm"):
        python = [s.op for s in assign(steps, lib.ops)]
        deepest = max(deepest, *(count(s) for n in python for s in _states(n)))
        plans = plans_for(lib)
        packed = plans.pack(steps)
        plans.cache_stack(packed)
        assert plans.stencils(packed) == python
        _check_consistent(steps, python)
    assert deepest == 1


def test_a_cache_deeper_than_the_template_is_refused():
    from jit.build.library import Variant

    with pytest.raises(ValueError, match="stack_depth must be 0 to 2"):
        Variant(stack_depth=3)
