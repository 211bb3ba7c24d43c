"""Two builds from the same sources, flags and clang give the same bytes."""

from __future__ import annotations

from jit.build.library import build_library, jobs_for_library, library_path, objects_dir
from jit.targets import TARGETS


def test_two_forced_builds_are_identical(tmp_path, monkeypatch):
    outputs = []
    for run in ("one", "two"):
        monkeypatch.setenv("JIT_CACHE_DIR", str(tmp_path / run))
        for target in TARGETS:
            _, rebuilt = build_library(target, force=True, progress=lambda _: None)
            assert rebuilt
        outputs.append(
            {
                target: (
                    library_path(target).read_bytes(),
                    {p.name: p.read_bytes() for p in sorted(objects_dir(target).iterdir())},
                )
                for target in TARGETS
            }
        )
    assert outputs[0] == outputs[1]
    for target in TARGETS:
        # every op, every stack-caching variant and the shim
        assert sorted(outputs[0][target][1]) == sorted(f"{job.name}.o" for job in jobs_for_library())
