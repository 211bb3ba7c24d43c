"""Building an op set's stencil library (per target) and C interpreter (host).

The same compile and the same processing as the bundled library
(jit.build): one clang process per op, pyelftools and the tail clean-up on
each object.  Clang runs in the op set's directory with relative paths, so
the bytes do not depend on where the directory is.  A library is cached at
<cache>/opsets/<name>/<target>.json under a key of everything it is built
from (every file of the op set, the flags, clang, the processing code), so
two op sets, or two versions of one, never share an entry.  A wheel ships
the bundled op sets' libraries (jit.build.prebuilt), found by the same key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

from ..build import SHIM, prebuilt
from ..build.hostlib import compile_shared
from ..build.library import _PROCESSING_MODULES, _write_atomic, look_up
from ..build.stencils import FORMAT_VERSION, StencilLibrary
from ..build.toolchain import COMMON_FLAGS, Clang, find_clang
from ..errors import StencilBuildError, ToolchainError
from ..paths import cache_dir
from ..targets import Target, get_target
from . import HELPER_STENCIL, OpSet

INTERPRETER_FLAGS = ("-O2", "-std=gnu11", "-fPIC", "-shared", "-Wall", "-Werror", "-I.")


def compile_flags(opset: OpSet, target: Target) -> tuple[str, ...]:
    """What shapes an op set's stencils: the bundled stencils' flags, the op set's own, its directory."""
    return (f"--target={target.triple}", *COMMON_FLAGS, *target.flags, *opset.flags_for(target.name), "-I.")


def source_key(opset: OpSet, target: Target) -> str:
    package = Path(__file__).resolve().parent.parent
    return prebuilt.source_key(
        [
            ("format", str(FORMAT_VERSION).encode()),
            ("flags", "\0".join(compile_flags(opset, target)).encode()),
            ("ops", "\0".join(opset.ops).encode()),
            ("helpers", "\0".join(opset.helpers).encode()),
            *((f"opset/{p.relative_to(opset.root)}", p.read_bytes()) for p in opset.sources()),
            *((f"jit/{name}", (package / name).read_bytes()) for name in _PROCESSING_MODULES),
        ]
    )


def library_path(opset: OpSet, target: str) -> Path:
    return cache_dir() / "opsets" / opset.name / f"{target}.json"


def _run_clang(clang: Clang, opset: OpSet, cmd: list[str], what: str, target: str) -> bytes:
    import subprocess

    try:
        out = subprocess.run([clang.path, *cmd], capture_output=True, timeout=300, check=False, cwd=opset.root)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError(f"running {clang.path} failed: {e}") from e
    if out.returncode != 0:
        msg = out.stderr.decode(errors="replace").strip()
        raise StencilBuildError(f"{opset.name}:{what}", target, f"clang failed:\n{msg}")
    return out.stdout


def _build_one(clang: Clang, opset: OpSet, target: Target, name: str):
    """One stencil: the shim, an op (the template for it), or a helper (its
    function renamed _JIT_ENTRY, each function in a section of its own)."""
    from ..build.process import process_object

    if name == SHIM:
        source, defines = opset.shim, []
    elif name.startswith(HELPER_STENCIL):
        assert opset.helper_source is not None
        source = opset.helper_source
        defines = [f"-D{name[len(HELPER_STENCIL) :]}=_JIT_ENTRY", "-ffunction-sections"]
    else:
        source, defines = opset.template, [f"-DTHIS_OP=OP_{name}"]
    cmd = [*compile_flags(opset, target), f"-ffile-prefix-map={opset.root}/=", *defines, source, "-o", "-"]
    blob = _run_clang(clang, opset, cmd, name, target.name)
    return process_object(blob, f"{opset.name}:{name}", target, helpers=opset.helpers)


_LOADED: dict[tuple[Path, str], tuple[tuple, StencilLibrary]] = {}


def build_library(opset: OpSet, target_name: str, *, force: bool = False) -> StencilLibrary:
    """The op set's library for a target: shipped, cached, or built now;
    remembered in this process for the op set as it was loaded (its stamp:
    the engines hand in jit.opsets.current(opset), so a change of a file
    means a new stamp, and no file is looked at twice a run)."""
    memo = (opset.root, target_name)
    if not force and memo in _LOADED and _LOADED[memo][0] == opset.stamp:
        return _LOADED[memo][1]
    lib = _build_library(opset, target_name, force)
    _LOADED[memo] = (opset.stamp, lib)
    return lib


def _build_library(opset: OpSet, target_name: str, force: bool) -> StencilLibrary:
    target = get_target(target_name)
    path = library_path(opset, target.name)
    shipped_as = f"opsets/{opset.name}/{path.name}"
    found, clang, key = look_up(shipped_as, source_key(opset, target), path, target.name, force)
    if found is not None:
        return found
    assert clang is not None
    names = [SHIM, *opset.ops, *(HELPER_STENCIL + h for h in opset.helpers)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        built = list(pool.map(lambda n: _build_one(clang, opset, target, n), names))
    # (process_object named each for its errors as opset:op; the library by op)
    stencils = {name: replace(stencil, name=name) for name, stencil in zip(names, built, strict=True)}
    lib = StencilLibrary(
        target.name,
        key,
        clang.version,
        compile_flags(opset, target),
        stencils[SHIM],
        {name: stencils[name] for name in names if name != SHIM},
    )
    _write_atomic(path, lib.dumps().encode())
    return lib


def library_artifact(opset: OpSet, target_name: str) -> prebuilt.Artifact:
    target = get_target(target_name)
    lib = build_library(opset, target.name)
    return prebuilt.Artifact(f"opsets/{opset.name}/{target.name}.json", source_key(opset, target), lib.dumps().encode())


def interpreter_key(opset: OpSet) -> str:
    return prebuilt.source_key(
        [
            ("flags", "\0".join(INTERPRETER_FLAGS).encode()),
            *((f"opset/{p.relative_to(opset.root)}", p.read_bytes()) for p in opset.sources()),
        ]
    )


_INTERPRETERS: dict[tuple[Path, tuple], Path] = {}


def interpreter(opset: OpSet) -> Path:
    """The op set's C interpreter as a shared object for this machine (built
    once, cached; remembered in this process per stamp, as libraries are)."""
    memo = (opset.root, opset.stamp)
    if memo not in _INTERPRETERS:
        _INTERPRETERS[memo] = _interpreter(opset)
    return _INTERPRETERS[memo]


def _interpreter(opset: OpSet) -> Path:
    if opset.interpreter is None:
        raise ToolchainError(f"op set {opset.name} has no C interpreter (no `interpreter` in its opset.toml)")
    sources = interpreter_key(opset)
    shipped = prebuilt.find(f"opsets/{opset.name}/interp.so", sources)
    if shipped is not None:
        return shipped
    clang = find_clang()
    key = hashlib.sha256(prebuilt.with_clang(sources, clang.version).encode()).hexdigest()[:16]
    path = cache_dir() / "opsets" / opset.name / f"interp-{key}.so"
    if not path.exists():
        sources_c = [opset.interpreter, *([opset.helper_source] if opset.helper_source else [])]
        compile_shared(
            [clang.path, *INTERPRETER_FLAGS, *sources_c], path, opset.root, f"op set {opset.name}'s interpreter"
        )
    return path


def interpreter_artifact(opset: OpSet) -> prebuilt.Artifact:
    return prebuilt.Artifact(f"opsets/{opset.name}/interp.so", interpreter_key(opset), interpreter(opset).read_bytes())
