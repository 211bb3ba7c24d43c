"""An op set's stencil library (per target) and C interpreter (host).

The library comes from the one builder, jit.build.library, as the stack
machine's does: the same compile, the same processing, cached per op set,
target and content (and shipped in a wheel for the bundled op sets).  Here
it is remembered per op set as loaded, so that a run looks at no file twice.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..build import library, prebuilt
from ..build.hostlib import compile_shared
from ..build.stencils import StencilLibrary
from ..build.toolchain import find_clang
from ..errors import ToolchainError
from ..paths import cache_dir
from . import OpSet

INTERPRETER_FLAGS = ("-O2", "-std=gnu11", "-fPIC", "-shared", "-Wall", "-Werror", "-I.")


_LOADED: dict[tuple[Path, str], tuple[tuple, StencilLibrary]] = {}


def library_for(opset: OpSet, target_name: str, *, force: bool = False) -> StencilLibrary:
    """The op set's library for a target: shipped, cached, or built now;
    remembered in this process for the op set as it was loaded (its stamp:
    the engines hand in jit.opsets.current(opset), so a change of a file
    means a new stamp, and no file is looked at twice a run)."""
    memo = (opset.root, target_name)
    if not force and memo in _LOADED and _LOADED[memo][0] == opset.stamp:
        return _LOADED[memo][1]
    lib, _ = library.build_library(target_name, opset=opset, force=force)
    _LOADED[memo] = (opset.stamp, lib)
    return lib


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
