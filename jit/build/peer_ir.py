"""The LLVM peer's input: each op body as clang's unoptimised LLVM IR, for the host.

Two functions per op, both from stencils/bodies.h: its stencil function
(template.c) and its peer function (peer.c).  Clang stops before optimising
(llvmlite's own LLVM optimises them, jit.runtime.llvm_backend), so this is a
build step like the stencils: shipped in a wheel, or cached, keyed by what it
is made from.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

from ..errors import StencilBuildError, ToolchainError
from ..lang.optable import optable
from ..paths import STENCILS_DIR, cache_dir
from ..targets import get_target, host_target
from . import prebuilt
from .library import Job, jobs_for
from .toolchain import compile_flags, find_clang, local_flags

PEER_PREFIX = "peer:"  # the key of an op's peer function


def ir_flags(target_name: str) -> list[str]:
    """The stencils' flags, but stopping at unoptimised LLVM IR: clang 19's
    optimised IR can hold constant expressions that llvmlite's newer LLVM no
    longer reads, so llvmlite's own LLVM optimises each op instead."""
    flags = [f for f in compile_flags(get_target(target_name)) if f != "-c" and not f.startswith("-O")]
    return [*flags, "-O0", "-Xclang", "-disable-O0-optnone", "-S", "-emit-llvm"]


def raw_key(target: str) -> str:
    """What clang's IR for the host is made from, clang aside."""
    return prebuilt.files_key(ir_flags(target), sorted(p for p in STENCILS_DIR.iterdir() if p.is_file()))


def raw_ir_file(target: str) -> Path:
    """Clang's unoptimised IR of every op's stencil function and peer
    function, as gzip'd JSON (each op's module carries all of bodies.h):
    shipped in a wheel, else cached like the stencils, emitted first if missing."""
    key = raw_key(target)
    shipped = prebuilt.find(f"llvm/{target}.json.gz", key)
    if shipped is not None:
        return shipped
    clang = find_clang()
    path = cache_dir() / "llvm" / f"{target}-clang-{prebuilt.with_clang(key, clang.version)}.json.gz"
    if not path.exists():
        ops = {op.name for op in optable()}
        jobs = [job for job in jobs_for() if job.name in ops]  # not the shim, nor stack-caching variants
        jobs += [Job(PEER_PREFIX + job.name, STENCILS_DIR / "peer.c", job.flags) for job in jobs]
        flags = ir_flags(target)
        emitted = {job.name: _emit(clang.path, flags, job, target) for job in jobs}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_bytes(gzip.compress(json.dumps(emitted, sort_keys=True).encode(), mtime=0))
        os.replace(tmp, path)
    return path


def raw_ir_artifact() -> prebuilt.Artifact:
    """Clang's IR for the host, as a wheel ships it."""
    target = host_target()
    if target is None:
        raise ToolchainError("the LLVM backend runs natively, and this host has no native target")
    return prebuilt.Artifact(f"llvm/{target}.json.gz", raw_key(target), raw_ir_file(target).read_bytes())


def _emit(clang: str, flags: list[str], job: Job, target: str) -> str:
    source = job.source.relative_to(STENCILS_DIR)
    cmd = [clang, *flags, *local_flags(STENCILS_DIR), *job.flags, str(source), "-o", "-"]
    result = subprocess.run(cmd, cwd=STENCILS_DIR, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StencilBuildError(job.name, target, f"clang -emit-llvm failed:\n{result.stderr.strip()}")
    return result.stdout
