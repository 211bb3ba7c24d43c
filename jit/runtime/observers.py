"""Whoever outside a run wants to know about its compiled code: perf (a map or a jitdump) and gdb.

Each observer is told of every trace and function as it is compiled
(`add`, with its jit.runtime.codeinfo description) and is closed before the
code is freed.  The tiered engine keeps a list of them, chosen by
TierConfig's perf_map, perf_jitdump and gdb.
"""

from __future__ import annotations

import os
from typing import Protocol

from .codeinfo import CodeInfo
from .config import TierConfig


class Observer(Protocol):
    def add(self, info: CodeInfo) -> None: ...

    def close(self) -> None: ...


class PerfMap:
    """/tmp/perf-PID.map: one line per piece of code, which `perf report` uses to name samples."""

    def __init__(self) -> None:
        self.path = f"/tmp/perf-{os.getpid()}.map"

    def add(self, info: CodeInfo) -> None:
        with open(self.path, "a") as f:
            f.write(f"{info.address:x} {len(info.code):x} {info.name}\n")

    def close(self) -> None:
        pass


def observers_for(config: TierConfig, target: str) -> list[Observer]:
    found: list[Observer] = []
    if config.perf_map:
        found.append(PerfMap())
    if config.perf_jitdump:
        from .jitdump import RunDump

        found.append(RunDump(target))
    if config.gdb:
        from .gdbjit import GdbJit

        found.append(GdbJit(target))
    return found
