"""Building stencil libraries: compile every op for a target, process, cache.

One clang process per op and target, run in parallel.  The result is cached
under a key that hashes everything the output depends on (the C sources, the
flags, clang's version and the processing code), so an unchanged tree
rebuilds nothing and any change rebuilds everything it affects.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..codegen.stackcache import DEPTH, stencil_name, variants
from ..errors import StencilBuildError, ToolchainError
from ..lang.optable import optable
from ..paths import SOURCE_ROOT, STENCILS_DIR, cache_dir
from ..targets import Target, get_target
from . import SHIM, prebuilt
from .stencils import FORMAT_VERSION, Stencil, StencilLibrary
from .toolchain import Clang, compile_flags, find_clang, local_flags

# The Python modules whose behaviour shapes a library: part of the cache key.
_PROCESSING_MODULES = (
    "build/elf.py",
    "build/process.py",
    "build/relocs.py",
    "build/stencils.py",
    "build/tail.py",
    "build/toolchain.py",
    "vmdef.py",
    "targets/__init__.py",
    "targets/x86_64.py",
    "targets/aarch64.py",
)


@dataclass(frozen=True)
class Variant:
    """How a library is built: the default, or with one technique switched for
    an ablation (another optimisation level, no tail clean-up, a shallower
    stack cache), or with only some ops (the tests' small libraries)."""

    opt: str = "-Os"
    clean_tail: bool = True
    split_cold: bool = True  # hot/cold splitting (jit.build.tail.split_cold), part of the tail clean-up
    stack_depth: int = DEPTH  # stack slots its variants can keep in registers (0: none)
    ops: tuple[str, ...] | None = None  # only these ops of the table (and their variants); None: all

    def __post_init__(self) -> None:
        if not 0 <= self.stack_depth <= DEPTH:
            raise ValueError(f"stack_depth must be 0 to {DEPTH}: the template has {DEPTH} registers for the stack")
        unknown = set(self.ops or ()) - {op.name for op in optable()}
        if unknown:
            raise ValueError(f"no such ops in the op table: {', '.join(sorted(unknown))}")

    @property
    def tag(self) -> str:
        parts = [] if self.opt == "-Os" else [self.opt.lstrip("-")]
        parts += [] if self.clean_tail else ["keep-tails"]
        parts += [] if self.split_cold else ["cold-inline"]
        parts += [] if self.stack_depth == DEPTH else [f"depth{self.stack_depth}"]
        if self.ops is not None:
            parts.append("ops-" + hashlib.sha256(" ".join(sorted(self.ops)).encode()).hexdigest()[:10])
        return "-".join(parts)


DEFAULT = Variant()


@dataclass(frozen=True)
class Job:
    """One object to compile: a stencil name, its source and its defines."""

    name: str
    source: Path
    flags: tuple[str, ...] = ()  # extra clang flags: -D for the op, or a test's own


def jobs_for_library(stack_depth: int = DEPTH, only: tuple[str, ...] | None = None) -> list[Job]:
    """The shim, every op (or only those named), then their stack-caching variants (jit.codegen.stackcache)."""
    template = STENCILS_DIR / "template.c"
    table = [op for op in optable() if only is None or op.name in only]
    ops = [Job(op.name, template, (f"-DTHIS_OP=OP_{op.name}",)) for op in table]
    cached = [
        Job(stencil_name(op.name, i, o), template, (f"-DTHIS_OP=OP_{op.name}", f"-DCACHE_IN={i}", f"-DCACHE_OUT={o}"))
        for op in table
        for i, o in variants(op, stack_depth)
        if i or o
    ]
    return [Job(SHIM, STENCILS_DIR / "shim.c"), *ops, *cached]


def compile_object(clang: Clang, target: Target, job: Job, variant: Variant = DEFAULT) -> bytes:
    """Run clang on one source; its diagnostics become a StencilBuildError."""
    import subprocess  # (only building runs clang; a cached run need not import it)

    source = job.source.relative_to(SOURCE_ROOT) if job.source.is_relative_to(SOURCE_ROOT) else job.source
    cmd = [clang.path, *compile_flags(target, variant.opt), *local_flags(), *job.flags, str(source), "-o", "-"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=300, check=False, cwd=SOURCE_ROOT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError(f"running {clang.path} failed: {e}") from e
    if out.returncode != 0:
        msg = out.stderr.decode(errors="replace").strip()
        raise StencilBuildError(job.name, target.name, f"clang failed:\n{msg}")
    return out.stdout


def build_stencil(clang: Clang, target: Target, job: Job, variant: Variant = DEFAULT) -> tuple[Stencil, bytes]:
    from .process import process_object  # (only building needs pyelftools and capstone)

    blob = compile_object(clang, target, job, variant)
    return process_object(blob, job.name, target, clean_tail=variant.clean_tail, split_cold=variant.split_cold), blob


def source_key(target: Target, variant: Variant = DEFAULT) -> str:
    """Everything a library is built from but clang: the sources, flags, jobs and processing code."""
    here = Path(__file__).parent.parent  # the jit package
    jobs = jobs_for_library(variant.stack_depth, variant.ops)
    return prebuilt.source_key(
        [
            ("format", str(FORMAT_VERSION).encode()),
            ("flags", "\0".join(compile_flags(target, variant.opt)).encode()),
            ("clean_tail", str(variant.clean_tail).encode()),
            ("split_cold", str(variant.split_cold).encode()),
            ("jobs", "\0".join(f"{j.name} {' '.join(j.flags)}" for j in jobs).encode()),
            *((f"stencils/{p.name}", p.read_bytes()) for p in sorted(STENCILS_DIR.iterdir()) if p.is_file()),
            *((f"jit/{name}", (here / name).read_bytes()) for name in _PROCESSING_MODULES),
        ]
    )


def cache_key(clang: Clang, target: Target, variant: Variant = DEFAULT) -> str:
    return prebuilt.with_clang(source_key(target, variant), clang.version)


def library_path(target: str, variant: Variant = DEFAULT) -> Path:
    suffix = f"-{variant.tag}" if variant.tag else ""
    return cache_dir() / "stencils" / f"{target}{suffix}.json"


def objects_dir(target: str, variant: Variant = DEFAULT) -> Path:
    suffix = f"-{variant.tag}" if variant.tag else ""
    return cache_dir() / "stencils" / f"{target}{suffix}"


def _write_atomic(path: Path, data: bytes) -> None:
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


Progress = Callable[[str], None]


def _progress_printer() -> Progress:
    tty = sys.stderr.isatty()

    def show(line: str) -> None:
        if tty:
            sys.stderr.write(f"\r\x1b[K{line}")
            sys.stderr.flush()

    return show


def build_library(
    target_name: str,
    *,
    jobs: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
    variant: Variant = DEFAULT,
) -> tuple[StencilLibrary, bool]:
    """The library for one target, from the cache if it is current.

    Returns (library, rebuilt).  A library the wheel shipped (jit.build.prebuilt)
    comes first when its sources are these; otherwise clang is needed.  Objects
    are kept beside a built library so that --keep-objects and the tests can
    compare them with llvm-objdump.
    """
    target = get_target(target_name)
    path = library_path(target.name, variant)
    found, clang, key = look_up(f"stencils/{path.name}", source_key(target, variant), path, target.name, force)
    if found is not None:
        return found, False
    assert clang is not None
    work = jobs_for_library(variant.stack_depth, variant.ops)
    workers = jobs or os.cpu_count() or 1
    if progress is None and not sys.stderr.isatty():
        # No terminal to redraw a progress line on (a pipe, a CI log, a
        # notebook): one line, so that a minute of silence is explained.
        seconds = max(5, round(len(work) * 0.18 / workers, -1))  # about 0.18 s per object, measured
        sys.stderr.write(
            f"jit: building the stencil library for {target.name} ({len(work)} objects), once: about "
            f"{seconds:.0f} s on {workers} cores; then cached in {path.parent}\n"
        )
        sys.stderr.flush()
    show = progress or _progress_printer()
    done = 0

    def run(job: Job) -> tuple[Stencil, bytes]:
        return build_stencil(clang, target, job, variant)

    from concurrent.futures import ThreadPoolExecutor  # (only a build needs threads)

    results: dict[str, tuple[Stencil, bytes]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for job, result in zip(work, pool.map(run, work), strict=True):
            results[job.name] = result
            done += 1
            show(f"[{done}/{len(work)}] {target.name} {job.name}")
    show("")
    objdir = objects_dir(target.name, variant)
    for name, (_, blob) in results.items():
        _write_atomic(objdir / f"{name}.o", blob)
    lib = StencilLibrary(
        target.name,
        key,
        clang.version,
        compile_flags(target, variant.opt),
        results[SHIM][0],
        {job.name: results[job.name][0] for job in work if job.name != SHIM},
    )
    _write_atomic(path, lib.dumps().encode())
    return lib, True


def look_up(
    shipped_as: str, sources: str, path: Path, target: str, force: bool = False
) -> tuple[StencilLibrary | None, Clang | None, str]:
    """A current library without building: the wheel's (by source key; no
    clang asked), else the cache's (by key, clang included).  Otherwise
    (None, clang, key) for the build; `force` skips both."""
    shipped = None if force else prebuilt.find(shipped_as, sources)
    if shipped is not None:
        try:
            lib = StencilLibrary.load(shipped)
            if lib.target == target:
                return lib, None, ""
        except ValueError:
            pass  # a damaged install: build it, as from sources
    clang = find_clang()
    key = prebuilt.with_clang(sources, clang.version)
    if not force and path.exists():
        try:
            lib = StencilLibrary.load(path)
            if lib.key == key and lib.target == target:
                return lib, clang, key
        except ValueError:
            pass  # corrupt or stale: rebuild
    return None, clang, key


def load_library(target_name: str, variant: Variant = DEFAULT) -> StencilLibrary:
    """The current library for a target, building it first if needed."""
    return build_library(target_name, variant=variant)[0]


def library_artifact(target_name: str, variant: Variant = DEFAULT) -> prebuilt.Artifact:
    """The library as a wheel ships it (built first if the cache has none)."""
    target = get_target(target_name)
    lib = load_library(target.name, variant)
    name = f"stencils/{library_path(target.name, variant).name}"
    return prebuilt.Artifact(name, source_key(target, variant), lib.dumps().encode())
