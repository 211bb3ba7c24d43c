"""Trace compile cost end to end, and code size (pytest-benchmark).

    pytest bench/test_compile.py --benchmark-group-by=param:program

The traces are the ones the bundled programs really produce (the tiered
engine records them on a run); each backend forms and compiles all of a
program's traces per round, from what tier 1 handed over.  Throughput (micro-ops per second) and code size (bytes
laid down against the stencils used, as clang emitted them) go into each
benchmark's extra_info.
"""

from __future__ import annotations

from functools import cache

import pytest

from jit.tools.benchmark import SIZES, code_sizes, collect_traces, load_programs


@cache
def traces_of(program: str):
    programs = load_programs({program: SIZES[program]})
    return programs[program], collect_traces(programs, SIZES)


def _backend(name: str):
    if name == "copy-and-patch":
        from jit.runtime.native import native_runtime

        return native_runtime()
    from jit.runtime.llvm_backend import llvm_backend

    return llvm_backend(0 if name == "llvm-O0" else 2)


@pytest.mark.parametrize("backend", ["copy-and-patch", "llvm-O0", "llvm-O2"])
@pytest.mark.parametrize("program", sorted(SIZES))
def test_compile_traces(benchmark, program, backend):
    prog, traces = traces_of(program)
    if not traces:
        pytest.skip(f"{program} has no loops, so the tiered engine compiles no trace")
    compiler = _backend(backend)

    def compile_all():
        return [compiler.compile_handover(prog, t.handover)[1] for t in traces]

    rounds = 20 if backend == "copy-and-patch" else 3
    codes = benchmark.pedantic(compile_all, rounds=rounds, warmup_rounds=1)
    for code in codes:
        code.free()
    uops = sum(t.uops for t in traces)
    benchmark.extra_info["traces"] = len(traces)
    benchmark.extra_info["uops_per_second"] = uops / benchmark.stats.stats.median
    if backend == "copy-and-patch":
        emitted, used = code_sizes(traces)
        benchmark.extra_info["code_size_ratio"] = emitted / used
        assert emitted <= used
