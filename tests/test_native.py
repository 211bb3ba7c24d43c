"""Stitched code running natively: trampolines, W^X, and no leaks."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import pytest

from jit.codegen.trace import program_steps
from jit.lang.uop import parse, parse_file
from jit.paths import ROOT
from jit.runtime.memory import PROT_EXEC, PROT_READ, PROT_WRITE, Arena, ExecMemoryError, protect
from jit.runtime.native import NativeRuntime, native_runtime

pytestmark = pytest.mark.skipif(native_runtime is None, reason="no native target")


def maps() -> list[str]:
    with open("/proc/self/maps") as f:
        return f.read().splitlines()


def wx_mappings() -> list[str]:
    return [line for line in maps() if line.split()[1].startswith("rwx")]


def test_protect_refuses_writable_and_executable():
    arena = Arena()
    region = arena.allocate(100)
    with pytest.raises(ExecMemoryError, match="writable and executable"):
        protect(region.address, region.size, PROT_READ | PROT_WRITE | PROT_EXEC)
    region.free()


@pytest.mark.parametrize("dual, taken", [(True, 128), (False, 4096)])
def test_region_lifecycle_and_accounting(dual, taken):
    """Dual-mapped regions are packed at cache-line granularity (nothing is
    ever mprotected there); otherwise a region is whole pages."""
    arena = Arena(chunk_size=1 << 16, dual=dual)
    regions = [arena.allocate(100) for _ in range(10)]
    stats = arena.stats()
    assert stats["mappings"] == 1 and stats["regions"] == 10
    assert stats["bytes_used"] == 10 * taken and stats["bytes_mapped"] == 1 << 16
    addresses = sorted(r.address for r in regions)
    assert all(b - a >= taken for a, b in itertools.pairwise(addresses))
    regions[0].write(0, b"\xc3")
    regions[0].seal()
    with pytest.raises(ExecMemoryError, match="not writable"):
        regions[0].write(0, b"\x90")
    regions[0].patch(0, b"\x90\xc3")
    assert not regions[0].writable  # (sealed still)
    assert regions[0].read(0, 2) == b"\x90\xc3"
    big = arena.allocate(1 << 17)  # larger than a chunk: a chunk of its own
    assert arena.stats()["mappings"] == 2
    for r in [*regions, big]:
        r.free()
    regions[3].free()  # twice is harmless
    assert arena.stats() == {"mappings": 0, "bytes_mapped": 0, "bytes_used": 0, "regions": 0}


def test_no_mapping_is_ever_writable_and_executable_while_code_runs():
    """`python -m jit run` on a long native run; this process reads its
    /proc/PID/maps meanwhile.  (A separate process, because unicorn, which the
    emulation tests load into this one, keeps its own RWX translation cache.)"""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jit", "run", "bench/programs/count.uop", "1000000000", "--engine", "jit", "--eager"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    looks = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/maps") as f:
                lines = f.read().splitlines()
        except OSError:
            break
        assert not [line for line in lines if line.split()[1].startswith("rwx")]
        looks += 1
        time.sleep(0.002)
    out, _ = proc.communicate()
    assert proc.returncode == 0 and out == "1000000000\n"
    assert looks > 5  # the check really ran while the code did


def test_ten_thousand_compile_and_free_cycles_leave_nothing_behind():
    program = parse(".func main\n push_int 2\n push_int 3\n add\n print_int\n halt\n")
    rt = native_runtime()
    steps = program_steps(program)
    for _ in range(10):  # warm up: the runtime's own shim and caches
        rt.compile(steps).free()
    before_maps, before_stats, before_rss = len(maps()), rt.arena.stats(), rss()
    for _ in range(10_000):
        rt.compile(steps).free()
    assert rt.arena.stats() == before_stats
    assert len(maps()) == before_maps
    assert rss() - before_rss < 8 << 20  # no leak to speak of (allocator noise only)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_traces_are_freed_when_their_program_ends():
    from jit.runtime.tiering import TierConfig, prepare_tiered

    rt = native_runtime()
    before = rt.arena.stats()
    runner = prepare_tiered(parse_file(ROOT / "bench" / "programs" / "fannkuch.uop"), [6], TierConfig(2, 2))
    assert runner().status == "halted"
    assert runner.stats.traces > 5
    assert rt.arena.stats() == before


def test_far_helpers_are_reached_through_trampolines():
    """Code mapped far (> 2 GiB) from the C helpers must call them through trampolines."""
    rt0 = native_runtime()
    helper = min(rt0.helpers.values())
    hint = (helper + (1 << 36)) & ~0xFFFF if helper < (1 << 46) else 0x10_0000_0000
    rt = NativeRuntime(rt0.library, Arena(hint=hint))
    program = parse_file(ROOT / "bench" / "programs" / "fib.uop")
    compiled = rt.compile(program_steps(program))
    try:
        assert abs(compiled.region.address - helper) > (1 << 32)
        assert compiled.trampolines >= 2  # print_int and print_str
        from jit.runtime.cinterp import NativeVM

        vm = NativeVM.create(program, [20])
        rt.enter(vm.state, compiled.address(0))
        assert vm.outcome().output == b"6765\n"
        vm.close()
    finally:
        compiled.free()
        rt.close()
