"""Building stencil libraries, for any op set: compile every op for a target, process, cache.

The one builder: the bundled stack machine (stencils/, jit.opsets.STACK)
and every other op set (jit.opsets) go through it alike.  One clang process
per stencil and target, run in parallel, in the op set's directory with
relative paths (so the bytes do not depend on where it is).  The result is
cached at <cache>/opsets/<name>-<where>/<target>.json under a key that hashes
everything the output depends on (the op set's C, headers, table and
manifest, the flags, the stencils' names and defines, clang's version and
the processing code), so an unchanged op set rebuilds nothing, any change
rebuilds what it affects, and two op sets never share an entry.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..codegen.stackcache import DEPTH
from ..errors import StencilBuildError, ToolchainError
from ..opsets import HELPER_STENCIL
from ..paths import STENCILS_DIR, cache_dir
from ..targets import Target, get_target
from . import SHIM, prebuilt
from .stencils import FORMAT_VERSION, Stencil, StencilLibrary
from .toolchain import Clang, compile_flags, find_clang, local_flags

if TYPE_CHECKING:
    from ..opsets import OpSet

RELOCS = STENCILS_DIR / "relocs.def"

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
    stack_depth: int = DEPTH  # stack slots the stack machine's variants can keep in registers (0: none)
    float_cache: bool = True  # and variants that keep them in float registers (its FLOATS ops)
    ops: tuple[str, ...] | None = None  # only these ops of the table (and their variants); None: all
    defines: tuple[str, ...] = ()  # extra -D flags for every stencil: a switch inside a template

    def __post_init__(self) -> None:
        if not 0 <= self.stack_depth <= DEPTH:
            raise ValueError(f"stack_depth must be 0 to {DEPTH}: the template has {DEPTH} registers for the stack")
        if not all(d.startswith("-D") and len(d) > 2 for d in self.defines):
            raise ValueError(f"defines are -DNAME or -DNAME=VALUE flags, not {self.defines!r}")

    @property
    def tag(self) -> str:
        parts = [] if self.opt == "-Os" else [self.opt.lstrip("-")]
        parts += [] if self.clean_tail else ["keep-tails"]
        parts += [] if self.split_cold else ["cold-inline"]
        parts += [] if self.stack_depth == DEPTH else [f"depth{self.stack_depth}"]
        parts += [] if self.float_cache else ["no-float-cache"]
        parts += [d.removeprefix("-D").lower().replace("_", "-") for d in self.defines]
        if self.ops is not None:
            parts.append("ops-" + hashlib.sha256(" ".join(sorted(self.ops)).encode()).hexdigest()[:10])
        return "-".join(parts)


DEFAULT = Variant()

# Each build-time technique switched off alone, by the name bench --ablation
# and validate --off give it.
SWITCHED_OFF: dict[str, Variant] = {
    "keep-tails": Variant(clean_tail=False),
    "cold-inline": Variant(split_cold=False),
    "O3": Variant(opt="-O3"),
    "depth-1": Variant(stack_depth=1),
    "no-float-cache": Variant(float_cache=False),
    "locals-by-index": Variant(defines=("-DLOCALS_BY_INDEX",)),
    "memory-from-state": Variant(defines=("-DMEMORY_FROM_STATE",)),
}


def _stack() -> OpSet:
    from ..opsets import stack_machine

    return stack_machine()


@dataclass(frozen=True)
class Job:
    """One object to compile: a stencil name, its source and its defines."""

    name: str
    source: Path  # inside the op set's directory (compiled by its relative path) or anywhere
    flags: tuple[str, ...] = ()  # extra clang flags: -D for the op, or a test's own


def jobs_for(opset: OpSet | None = None, variant: Variant = DEFAULT) -> list[Job]:
    """The shim; every op of the table (or only those the variant names); the
    variants the op set's module adds to an op (`stencil_variants`: the stack
    machine's stack caching); then each helper the op set builds as a stencil."""
    opset = opset or _stack()
    unknown = set(variant.ops or ()) - set(opset.ops)
    if unknown:
        raise ValueError(f"no such ops in op set {opset.name}'s table: {', '.join(sorted(unknown))}")
    rows = [row for row in opset.table if variant.ops is None or row.name in variant.ops]
    template = opset.root / opset.template
    ops = [Job(row.name, template, (f"-DTHIS_OP=OP_{row.name}",)) for row in rows]
    more = getattr(opset.module, "stencil_variants", None)
    varied = [
        Job(name, template, (f"-DTHIS_OP=OP_{row.name}", *defines))
        for row in rows
        for name, defines in (more(row, variant) if more else ())
    ]
    helpers = [
        Job(HELPER_STENCIL + h, opset.root / str(opset.helper_source), (f"-D{h}=_JIT_ENTRY", "-ffunction-sections"))
        for h in opset.helpers
    ]
    return [Job(SHIM, opset.root / opset.shim), *ops, *varied, *helpers]


def flags_for(opset: OpSet, target: Target, variant: Variant = DEFAULT) -> tuple[str, ...]:
    """The flags that shape an op set's stencils (recorded in the library, hashed)."""
    return (*compile_flags(target, variant.opt, opset.flags_for(target.name)), *variant.defines)


def compile_object(
    clang: Clang, target: Target, job: Job, variant: Variant = DEFAULT, opset: OpSet | None = None
) -> bytes:
    """Run clang on one source, in the op set's directory; its diagnostics become a StencilBuildError."""
    import subprocess  # (only building runs clang; a cached run need not import it)

    opset = opset or _stack()
    source = job.source.relative_to(opset.root) if job.source.is_relative_to(opset.root) else job.source
    cmd = [clang.path, *flags_for(opset, target, variant), *local_flags(opset.root), *job.flags, str(source), "-o", "-"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=300, check=False, cwd=opset.root)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError(f"running {clang.path} failed: {e}") from e
    if out.returncode != 0:
        msg = out.stderr.decode(errors="replace").strip()
        raise StencilBuildError(f"{opset.name}:{job.name}", target.name, f"clang failed:\n{msg}")
    return out.stdout


def build_stencil(
    clang: Clang, target: Target, job: Job, variant: Variant = DEFAULT, opset: OpSet | None = None
) -> tuple[Stencil, bytes]:
    """One stencil (named as its job) and the object it came from."""
    from .process import process_object  # (only building needs pyelftools and capstone)

    opset = opset or _stack()
    blob = compile_object(clang, target, job, variant, opset)
    stencil = process_object(
        blob,
        f"{opset.name}:{job.name}",
        target,
        clean_tail=variant.clean_tail,
        split_cold=variant.split_cold,
        helpers=(*opset.helpers, *opset.host_helpers),
    )
    return replace(stencil, name=job.name), blob


def source_key(target: Target, variant: Variant = DEFAULT, opset: OpSet | None = None) -> str:
    """Everything a library is built from but clang: the sources, flags, jobs and processing code."""
    opset = opset or _stack()
    here = Path(__file__).parent.parent  # the jit package
    jobs = jobs_for(opset, variant)
    return prebuilt.source_key(
        [
            ("format", str(FORMAT_VERSION).encode()),
            ("flags", "\0".join(flags_for(opset, target, variant)).encode()),
            ("clean_tail", str(variant.clean_tail).encode()),
            ("split_cold", str(variant.split_cold).encode()),
            ("jobs", "\0".join(f"{j.name} {' '.join(j.flags)}" for j in jobs).encode()),
            ("helpers", "\0".join((*opset.helpers, "|", *opset.host_helpers)).encode()),
            *((f"opset/{p.relative_to(opset.root)}", p.read_bytes()) for p in opset.stencil_sources()),
            *((f"jit/{name}", (here / name).read_bytes()) for name in _PROCESSING_MODULES),
            ("relocs.def", RELOCS.read_bytes()),  # (the processing reads the relocation table)
        ]
    )


def _stem(target: str, variant: Variant) -> str:
    return f"{target}-{variant.tag}" if variant.tag else target


def _cache(opset: OpSet) -> Path:
    """An op set's part of the cache: by name, and by where it is (two
    directories that call themselves alike must not evict each other)."""
    where = hashlib.sha256(str(opset.root).encode()).hexdigest()[:8]
    return cache_dir() / "opsets" / f"{opset.name}-{where}"


def library_path(target: str, variant: Variant = DEFAULT, opset: OpSet | None = None) -> Path:
    return _cache(opset or _stack()) / f"{_stem(target, variant)}.json"


def shipped_name(target: str, variant: Variant = DEFAULT, opset: OpSet | None = None) -> str:
    """Where a wheel carries the library (under jit/prebuilt/)."""
    opset = opset or _stack()
    return f"opsets/{opset.name}/{_stem(target, variant)}.json"


def objects_dir(target: str, variant: Variant = DEFAULT, opset: OpSet | None = None) -> Path:
    return _cache(opset or _stack()) / _stem(target, variant)


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
    opset: OpSet | None = None,
    jobs: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
    variant: Variant = DEFAULT,
) -> tuple[StencilLibrary, bool]:
    """An op set's library for one target (default: the stack machine's), from the cache if it is current.

    Returns (library, rebuilt).  A library the wheel shipped (jit.build.prebuilt)
    comes first when its sources are these; otherwise clang is needed.  Objects
    are kept beside a built library so that --keep-objects and the tests can
    compare them with llvm-objdump.
    """
    opset = opset or _stack()
    target = get_target(target_name)
    path = library_path(target.name, variant, opset)
    sources = source_key(target, variant, opset)
    found, clang, key = look_up(shipped_name(target.name, variant, opset), sources, path, target.name, force)
    if found is not None:
        return found, False
    assert clang is not None
    work = jobs_for(opset, variant)
    workers = jobs or os.cpu_count() or 1
    if progress is None and not sys.stderr.isatty():
        # No terminal to redraw a progress line on (a pipe, a CI log, a
        # notebook): one line, so that a minute of silence is explained.
        seconds = max(5, round(len(work) * 0.18 / workers, -1))  # about 0.18 s per object, measured
        sys.stderr.write(
            f"jit: building op set {opset.name}'s stencil library for {target.name} ({len(work)} objects), "
            f"once: about {seconds:.0f} s on {workers} cores; then cached in {path.parent}\n"
        )
        sys.stderr.flush()
    show = progress or _progress_printer()
    done = 0

    def run(job: Job) -> tuple[Stencil, bytes]:
        return build_stencil(clang, target, job, variant, opset)

    from concurrent.futures import ThreadPoolExecutor  # (only a build needs threads)

    results: dict[str, tuple[Stencil, bytes]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for job, result in zip(work, pool.map(run, work), strict=True):
            results[job.name] = result
            done += 1
            show(f"[{done}/{len(work)}] {target.name} {job.name}")
    show("")
    objdir = objects_dir(target.name, variant, opset)
    for name, (_, blob) in results.items():
        _write_atomic(objdir / f"{name}.o", blob)
    lib = StencilLibrary(
        target.name,
        key,
        clang.version,
        flags_for(opset, target, variant),
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


def load_library(target_name: str, variant: Variant = DEFAULT, opset: OpSet | None = None) -> StencilLibrary:
    """The current library for a target, building it first if needed."""
    return build_library(target_name, variant=variant, opset=opset)[0]


def library_artifact(target_name: str, variant: Variant = DEFAULT, opset: OpSet | None = None) -> prebuilt.Artifact:
    """The library as a wheel ships it (built first if the cache has none)."""
    target = get_target(target_name)
    lib = load_library(target.name, variant, opset)
    return prebuilt.Artifact(
        shipped_name(target.name, variant, opset), source_key(target, variant, opset), lib.dumps().encode()
    )
