"""A compile in two C calls (stencils/compile.c, jit.codegen.ccompile) against its stages one at a time.

Compiling what tier 1 hands over in one go must give exactly what forming
it (jit.codegen.trace.form) and then planning and stitching the steps
(jit.codegen.cstitch) give: the same steps, exits and shape, the same
stencils, the same layout, and the same bytes at the same address.  The
stages are themselves held to the Python reference (tests/test_cform.py,
tests/test_cstitch.py); the tiered engine, and so the fuzzer, compiles
through this path.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from jit.codegen.cstitch import plans_for
from jit.codegen.trace import FUNCTION, LOOP, Handover, TraceShape, form
from jit.lang.ir import Program
from jit.runtime.config import TierConfig
from jit.runtime.memory import Arena
from jit.runtime.native import NativeRuntime, native_runtime
from jit.runtime.tiering import prepare_tiered
from jit.tools.benchmark import SIZES, Trace, load_programs


def handovers(program: Program, args: list[int], config: TierConfig | None = None) -> list[Handover]:
    """Every handover a tiered run compiles (paths, and hot functions)."""
    found: list[Handover] = []

    def keep(code, shape: TraceShape, side: bool) -> None:
        assert shape.handover is not None
        found.append(shape.handover)

    prepare_tiered(program, args, config, on_compile=keep)()
    return found


def assert_alike(rt: NativeRuntime, program: Program, handover: Handover) -> int:
    """Compiled in one go and stage by stage, the same; returns the steps."""
    shape, code = rt.compile_handover(program, handover)
    try:
        return assert_made_alike(rt, program, handover, shape, code)
    finally:
        code.free()


def assert_made_alike(rt: NativeRuntime, program: Program, handover: Handover, shape, code) -> int:
    """What a compile made (however it was called) against the stages one at a time."""
    ref = form(program, handover)
    assert list(shape.steps) == list(ref.steps), (handover.kind, handover.pcs)
    assert dict(shape.exits) == dict(ref.exits)
    assert (shape.start_pc, shape.ops, shape.kind) == (ref.start_pc, ref.ops, ref.kind)
    plans = plans_for(rt.library)
    packed, lay = plans.plan(ref.steps, rt.stack_cache)
    assert code.stencils == plans.stencils(packed)
    assert list(code.layout.code_offsets) == list(lay.code_offsets)
    assert list(code.layout.data_offsets) == list(lay.data_offsets)
    assert (code.layout.size, code.layout.trampolines, code.layout.trampoline_slots) == (
        lay.size,
        lay.trampolines,
        lay.trampoline_slots,
    )
    expected, used = plans.render_packed(packed, lay, code.region.address, plans.helper_values(rt.helpers))
    assert code.read() == expected and code.trampolines == used
    return len(shape.steps)


def test_every_bundled_handover_compiles_alike():
    """In one C call into the arena's open run; without dual mapping, in two
    (formed, then stitched into a region allocated between them); and
    without the stack cache."""
    rt = native_runtime()
    uncached = NativeRuntime(rt.library, stack_cache=False)
    single = NativeRuntime(rt.library, Arena(dual=False))
    kinds = set()
    try:
        for name, program in load_programs(SIZES).items():
            config = TierConfig(hot_loop=1, hot_exit=1, hot_call=1, max_trace=40)
            for handover in handovers(program, [SIZES[name]], config):
                kinds.add(handover.kind)
                for fuse, accounting in ((True, False), (False, True)):
                    h = replace(handover, superinstructions=fuse, accounting=accounting)
                    assert_alike(rt, program, h)
                assert_alike(uncached, program, handover)
                assert_alike(single, program, handover)
    finally:
        uncached.close()
        single.close()
    assert FUNCTION in kinds and LOOP in kinds
    assert single.arena.stats()["mappings"] == uncached.arena.stats()["mappings"] == 0


def test_the_benchmarks_compile_in_c_makes_what_one_call_makes():
    """jit.tools.benchmark times compiles made as the loop between the tiers
    makes them, every trace in one C call (NativeMachine.compile_paths): each
    is what compiling it alone makes, and the second and later calls make
    them into the memory the first used."""
    from jit.tools.benchmark import LoopCompiles

    programs = load_programs(SIZES)
    paths = []
    for name, program in programs.items():
        paths += [(name, h) for h in handovers(program, [SIZES[name]])]
    traces = [Trace(name, h, [], 0) for name, h in paths]
    loop = LoopCompiles(programs)
    try:
        m = loop.machine
        compile_all = m.compile_paths([(programs[name], h) for name, h in paths])
        addresses = []
        for _ in range(2):
            assert compile_all() == len(paths)
            made = m.take_compiles()
            addresses.append([code.address(0) for _, code, _ in made])
            for (name, h), (shape, code, side) in zip(paths, made, strict=True):
                assert not side
                assert_made_alike(loop.runtime, programs[name], h, shape, code)
            m.free_code()
        assert addresses[0] == addresses[1]
        assert loop.seconds(programs, traces) > 0
    finally:
        loop.close()
    assert loop.runtime.arena.stats()["mappings"] == 0


def test_compiles_share_runs_and_give_back_every_byte():
    """Code compiled in one C call comes from the arena's open run: many
    compiles to a run, a new run when one is full, the bytes of freed code
    used again, and, once everything is freed in any order, every chunk
    unmapped; the records go with the last object that reads them."""
    program = load_programs({"nbody": 10})["nbody"]
    paths = [h for h in handovers(program, [10]) if h.kind is not FUNCTION]
    rt = NativeRuntime(native_runtime().library, Arena(chunk_size=1 << 16, run_size=4096))
    rt.shim_region.free()  # (the arena then holds compiled code only)
    try:
        codes = [rt.compile_handover(program, h)[1] for h in paths * 40]
        stats = rt.arena.stats()
        assert stats["regions"] == len(codes) and stats["mappings"] >= 2  # (runs of 4 KiB, chunks of 64 KiB)
        runs = {code.region.run for code in codes}
        assert 1 < len(runs) < len(codes)
        assert len({code.address(0) for code in codes}) == len(codes)
        for code in codes[::2]:
            code.free()
        again = [rt.compile_handover(program, h)[1] for h in paths * 10]
        shape, code = rt.compile_handover(program, paths[0])
        code.free()
        assert list(shape.steps) == list(form(program, paths[0]).steps)  # (read after its code is freed)
        loop = next(h for h in paths if h.kind is LOOP)
        big = rt.compile_handover(program, replace(loop, pcs=tuple(loop.pcs) * 40))[1]  # (more than a run holds)
        assert big.size() > 4096 and big.region.size >= big.size()
        for code in [*codes[1::2], *again, big]:
            code.free()
        assert rt.arena.stats() == {"mappings": 0, "bytes_mapped": 0, "bytes_used": 0, "regions": 0}
    finally:
        rt.close()


def test_long_paths_grow_the_scratch():
    """A loop's path recorded round and round (an unrolled loop): hundreds of
    steps, more than the job's first scratch holds."""
    program = load_programs({"nbody": 10})["nbody"]
    loop = next(h for h in handovers(program, [10]) if h.kind is LOOP)
    rt = native_runtime()
    sizes = [assert_alike(rt, program, replace(loop, pcs=tuple(loop.pcs) * rounds)) for rounds in (1, 4, 30)]
    assert sizes[0] < 64 < sizes[1] and sizes[2] > 300


def test_code_far_from_the_helpers_grows_the_trampoline_room():
    rt0 = native_runtime()
    helper = min(rt0.helpers.values())
    hint = (helper + (1 << 36)) & ~0xFFFF if helper < (1 << 46) else 0x10_0000_0000
    rt = NativeRuntime(rt0.library, Arena(hint=hint))
    try:
        program = load_programs({"fib": 10})["fib"]
        main = next(f for f in program.functions if f.start == 0)
        handover = Handover(FUNCTION, (), main.start, 0)
        assert_alike(rt, program, handover)
        code = rt.compile_handover(program, handover)[1]
        assert code.trampolines >= 2  # (print_int and print_str, out of a near branch's reach)
        code.free()
    finally:
        rt.close()


def test_a_bad_handover_is_refused_and_maps_nothing():
    program = load_programs({"sieve": 100})["sieve"]
    path = next(h for h in handovers(program, [100]) if h.kind is LOOP)
    rt = native_runtime()
    before = rt.arena.stats()
    for bad in ([len(program.code)], [-1], [0, 10**9]):
        with pytest.raises(ValueError, match="outside the program"):
            rt.compile_handover(program, replace(path, pcs=tuple(bad)))
    with pytest.raises(ValueError, match="no function starts"):
        rt.compile_handover(program, Handover(FUNCTION, (), 1, 0))
    assert rt.arena.stats() == before
