"""The host's C library: helpers, the two baseline interpreters and the icache flush, via cffi.

Built by the same clang as the stencils, for the host, with the same
floating-point flags (so that the baselines and the stencils compute the
same bits), and cached under a hash of its sources, flags and clang.
cffi's ABI mode loads it: no C compiler is needed at import time beyond
the clang that builds the stencils anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import ToolchainError
from ..paths import SOURCE_ROOT, STENCILS_DIR, cache_dir
from . import prebuilt
from .toolchain import find_clang, local_flags

SOURCES = (
    "compile.c",
    "form.c",
    "helpers.c",
    "interp_switch.c",
    "interp_tailcall.c",
    "interp_tier1.c",
    "runtime.c",
    "stitch.c",
    "tiers.c",
)
FLAGS = (
    "-O3",
    "-std=c11",
    "-fPIC",
    "-shared",
    "-Wall",
    "-Werror",
    "-fno-math-errno",
    "-ffp-contract=off",
    "-fno-semantic-interposition",
    "-Istencils",
)


def cdef_text() -> str:
    """The declarations cffi needs, cut from stencils/vm.h (one copy)."""
    text = (STENCILS_DIR / "vm.h").read_text()
    return text.split("/* cdef-begin */", 1)[1].split("/* cdef-end */", 1)[0]


SHIPPED = "libjitvm.so"  # its name in a wheel's prebuilt directory


def source_key() -> str:
    """What the library is built from, clang aside: its flags and the C sources."""
    return prebuilt.files_key(FLAGS, sorted(p for p in STENCILS_DIR.iterdir() if p.is_file()))


def build_hostlib(force: bool = False) -> Path:
    """The shared library's path: the wheel's if its sources are these, else
    the cache's, compiled first if the cache has none."""
    key = source_key()
    shipped = None if force else prebuilt.find(SHIPPED, key)
    if shipped is not None:
        return shipped
    clang = find_clang()
    out = cache_dir() / "hostlib" / prebuilt.with_clang(key, clang.version) / "libjitvm.so"
    if out.exists() and not force:
        return out
    sources = [f"stencils/{s}" for s in SOURCES]
    return compile_shared([clang.path, *FLAGS, *local_flags(), *sources], out, SOURCE_ROOT, "the host library")


def compile_shared(command: list[str], out: Path, cwd: Path, what: str) -> Path:
    """Run a clang command that writes a shared object (`-o` appended), into
    a temporary file first, so that a failed or interrupted build never
    leaves a broken `out` in the cache; its diagnostics become a ToolchainError."""
    import subprocess  # (only a build needs these)
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".so")
    os.close(fd)
    result = subprocess.run([*command, "-o", tmp], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        os.unlink(tmp)
        raise ToolchainError(f"building {what} failed:\n{result.stderr.strip()}")
    os.replace(tmp, out)
    return out


def _ffi_key(declarations: str) -> str:
    return hashlib.sha256(declarations.encode()).hexdigest()[:24]


def _ffi_module(name: str, declarations: str) -> Path:
    """The cffi module's file: the wheel's, or the cache's, generated first if missing."""
    key = _ffi_key(declarations)
    path = prebuilt.find(f"cffi/{name}.py", key) or cache_dir() / "cffi" / key / f"{name}.py"
    if not path.exists():
        from cffi import FFI

        builder = FFI()
        builder.cdef(declarations)
        builder.set_source(name, None)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.py")
        with contextlib.redirect_stdout(io.StringIO()):  # (cffi says "generating ..." on stdout)
            builder.emit_python_code(str(tmp))
        os.replace(tmp, path)
    return path


def ffi_for(name: str, declarations: str) -> Any:
    """A cffi FFI for C declarations, in cffi's out-of-line ABI mode: they are
    parsed (by pycparser, which is slow to import and to run) once, into a
    small module `name` in the cache, which later runs import instead."""
    path = _ffi_module(name, declarations)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # a damaged cache entry: make it again
        if path.is_relative_to(prebuilt.PREBUILT_DIR):
            raise
        path.unlink(missing_ok=True)
        return ffi_for(name, declarations)
    return module.ffi


def ffi_artifact(name: str, declarations: str) -> prebuilt.Artifact:
    """A cffi module as a wheel ships it."""
    return prebuilt.Artifact(f"cffi/{name}.py", _ffi_key(declarations), _ffi_module(name, declarations).read_bytes())


def hostlib_artifacts() -> list[prebuilt.Artifact]:
    """The host library and its cffi module, as a wheel ships them."""
    return [
        prebuilt.Artifact(SHIPPED, source_key(), build_hostlib().read_bytes()),
        ffi_artifact("_jitvm_cffi", cdef_text()),
    ]


@cache
def hostlib() -> tuple[Any, Any]:
    """cffi's view of the host library (its handles carry no static types)."""
    ffi = ffi_for("_jitvm_cffi", cdef_text())
    try:
        return ffi, ffi.dlopen(str(build_hostlib()))
    except OSError:
        # A damaged cache entry (truncated, overwritten): build it again, once.
        return ffi, ffi.dlopen(str(build_hostlib(force=True)))
