"""Two builds from the same sources, flags and clang give the same bytes.

A library of a few ops proves it as well as the whole table would: the ops
below cover every kind of hole (operands, continuation, jump target, side
exit, helper call, position) and the stack-caching variants of each.
"""

from __future__ import annotations

from jit.build.library import Variant, build_library, jobs_for, library_path, objects_dir
from jit.targets import TARGETS

SMALL = Variant(ops=("PUSH_INT", "ADD", "JZ", "GUARD_ZERO", "MLOAD", "PRINT_INT", "HALT"))


def test_two_forced_builds_are_identical(tmp_path, monkeypatch):
    outputs = []
    for run in ("one", "two"):
        monkeypatch.setenv("JIT_CACHE_DIR", str(tmp_path / run))
        for target in TARGETS:
            _, rebuilt = build_library(target, force=True, progress=lambda _: None, variant=SMALL)
            assert rebuilt
        outputs.append(
            {
                target: (
                    library_path(target, SMALL).read_bytes(),
                    {p.name: p.read_bytes() for p in sorted(objects_dir(target, SMALL).iterdir())},
                )
                for target in TARGETS
            }
        )
    assert outputs[0] == outputs[1]
    for target in TARGETS:
        # every op asked for, each stack-caching variant, and the shim
        names = sorted(f"{job.name}.o" for job in jobs_for(variant=SMALL))
        assert sorted(outputs[0][target][1]) == names and len(names) > 20
