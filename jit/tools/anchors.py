"""The native C anchors: plain C versions of the bundled programs, built by clang.

bench/c/NAME.c holds the same algorithm as bench/programs/NAME.uop, with the
same output.  Each is compiled by the clang that builds the stencils, at
-O0 and at -O2, with the floating-point flags the stencils use (so the bits
agree), into a shared library cached under a hash of its sources, flags and
clang.  It runs in this process through cffi, like every other contender:
`anchor_setup` (not timed) clears its memory, `anchor_run` is the timed part.
They tell a reader what "fast" means for each program.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from ..build import prebuilt
from ..build.hostlib import compile_shared, ffi_artifact, ffi_for
from ..build.toolchain import find_clang
from ..errors import ToolchainError
from ..lang.ir import Program
from ..lang.outcome import HALTED, Outcome, Prepared
from ..paths import ANCHORS_DIR, cache_dir

LEVELS = ("-O0", "-O2")
# The host library's floating-point flags (jit.build.hostlib), so that the anchors
# compute the same bits as the stencils and the interpreters.
FLAGS = ("-std=c11", "-fPIC", "-shared", "-Wall", "-Werror", "-fno-math-errno", "-ffp-contract=off")
_CDEF = """
void anchor_setup(int64_t arg);
void anchor_run(int64_t arg);
const char *anchor_output(int64_t *len);
"""


def anchor_names() -> list[str]:
    """The programs that have a C anchor."""
    return sorted(p.stem for p in ANCHORS_DIR.glob("*.c"))


def build_anchor(name: str, level: str) -> Path:
    """The anchor's shared library, compiled first if the cache has none."""
    if level not in LEVELS:
        raise ValueError(f"anchors are built at {' or '.join(LEVELS)}, not {level}")
    source = ANCHORS_DIR / f"{name}.c"
    if not source.exists():
        raise ToolchainError(f"no C anchor for {name!r}: {source} does not exist")
    key = _source_key(name, level)
    shipped = prebuilt.find(_shipped_name(name, level), key)
    if shipped is not None:
        return shipped
    clang = find_clang()
    out = cache_dir() / "anchors" / f"{name}{level}-{prebuilt.with_clang(key, clang.version)}.so"
    if out.exists():
        return out
    return compile_shared(
        [clang.path, level, *FLAGS, source.name, "-lm"], out, ANCHORS_DIR, f"the C anchor {source.name} at {level}"
    )


def _source_key(name: str, level: str) -> str:
    return prebuilt.files_key([level, *FLAGS], [ANCHORS_DIR / f"{name}.c", ANCHORS_DIR / "anchor.h"])


def _shipped_name(name: str, level: str) -> str:
    return f"anchors/{name}{level}.so"


def anchor_artifacts() -> list[prebuilt.Artifact]:
    """Every anchor at every level, and their cffi module, as a wheel ships them."""
    built = [
        prebuilt.Artifact(_shipped_name(n, lv), _source_key(n, lv), build_anchor(n, lv).read_bytes())
        for n in anchor_names()
        for lv in LEVELS
    ]
    return [*built, ffi_artifact("_jitanchor_cffi", _CDEF)]


@cache
def _load(name: str, level: str) -> tuple[Any, Any]:
    ffi = ffi_for("_jitanchor_cffi", _CDEF)
    return ffi, ffi.dlopen(str(build_anchor(name, level)))


def prepare_anchor(program: Program, args: Sequence[int], level: str) -> Prepared:
    """Set up the C anchor of `program` (found by its file name) at `level`;
    calling the result runs it once.  It takes exactly one argument."""
    name = Path(program.filename).stem
    if len(args) != 1:
        raise ValueError(f"the C anchor of {name} takes one argument, not {len(args)}")
    ffi, lib = _load(name, level)
    (arg,) = args
    lib.anchor_setup(arg)

    def outcome() -> Outcome:
        size = ffi.new("int64_t *")
        data = lib.anchor_output(size)
        if size[0] < 0:
            raise MemoryError(f"the C anchor of {name} ran out of memory for its output")
        return Outcome(bytes(ffi.buffer(data, size[0])) if size[0] else b"", HALTED, -1)  # (the C has no IR position)

    return Prepared(lambda: lib.anchor_run(arg), outcome)
