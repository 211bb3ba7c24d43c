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
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import ToolchainError
from ..paths import SOURCE_ROOT, STENCILS_DIR, cache_dir
from .toolchain import find_clang, local_flags

SOURCES = ("helpers.c", "interp_switch.c", "interp_tailcall.c", "interp_tier1.c", "runtime.c", "stitch.c")
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


def _key(clang_version: str) -> str:
    h = hashlib.sha256(clang_version.encode() + b"\0" + "\0".join(FLAGS).encode())
    for path in sorted(STENCILS_DIR.iterdir()):
        if path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:24]


def build_hostlib(force: bool = False) -> Path:
    """The shared library's path, compiling it first if the cache has none."""
    clang = find_clang()
    out = cache_dir() / "hostlib" / _key(clang.version) / "libjitvm.so"
    if out.exists() and not force:
        return out
    sources = [f"stencils/{s}" for s in SOURCES]
    return compile_shared([clang.path, *FLAGS, *local_flags(), *sources], out, SOURCE_ROOT, "the host library")


def compile_shared(command: list[str], out: Path, cwd: Path, what: str) -> Path:
    """Run a clang command that writes a shared object (`-o` appended), into
    a temporary file first, so that a failed or interrupted build never
    leaves a broken `out` in the cache; its diagnostics become a ToolchainError."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".so")
    os.close(fd)
    result = subprocess.run([*command, "-o", tmp], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        os.unlink(tmp)
        raise ToolchainError(f"building {what} failed:\n{result.stderr.strip()}")
    os.replace(tmp, out)
    return out


def ffi_for(name: str, declarations: str) -> Any:
    """A cffi FFI for C declarations, in cffi's out-of-line ABI mode: they are
    parsed (by pycparser, which is slow to import and to run) once, into a
    small module `name` in the cache, which later runs import instead."""
    key = hashlib.sha256(declarations.encode()).hexdigest()[:24]
    path = cache_dir() / "cffi" / key / f"{name}.py"
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
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # a damaged cache entry: make it again
        path.unlink(missing_ok=True)
        return ffi_for(name, declarations)
    return module.ffi


@cache
def hostlib() -> tuple[Any, Any]:
    """cffi's view of the host library (its handles carry no static types)."""
    ffi = ffi_for("_jitvm_cffi", cdef_text())
    try:
        return ffi, ffi.dlopen(str(build_hostlib()))
    except OSError:
        # A damaged cache entry (truncated, overwritten): build it again, once.
        return ffi, ffi.dlopen(str(build_hostlib(force=True)))
