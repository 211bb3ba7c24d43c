"""Where the C sources, the bundled programs and the build cache live.

In a checkout the C sources are in stencils/ and the bundled programs in
bench/, beside the package.  An installed package carries them inside
itself, as jit/stencils, jit/programs, jit/anchors and jit/ebpf_programs
(pyproject.toml maps them).  Clang always runs in SOURCE_ROOT with relative paths (stencils/...),
so a library is byte for byte the same, and has the same cache key, either
way.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent  # a checkout's root (where bench/ and tests/ are)
INSTALLED = (PACKAGE / "stencils").is_dir()
SOURCE_ROOT = PACKAGE if INSTALLED else ROOT
STENCILS_DIR = SOURCE_ROOT / "stencils"
PROGRAMS_DIR = PACKAGE / "programs" if INSTALLED else ROOT / "bench" / "programs"
ANCHORS_DIR = PACKAGE / "anchors" if INSTALLED else ROOT / "bench" / "c"
EBPF_PROGRAMS_DIR = PACKAGE / "ebpf_programs" if INSTALLED else ROOT / "bench" / "ebpf"


def cache_dir() -> Path:
    """The build cache: $JIT_CACHE_DIR; else build/ in a checkout that can be
    written; else the per-user cache ($XDG_CACHE_HOME/jit, ~/.cache/jit), as
    for an installed package."""
    from .errors import JitError

    explicit = os.environ.get("JIT_CACHE_DIR")
    if explicit:
        path = Path(explicit)
        if path.exists() and not path.is_dir():
            raise JitError(f"JIT_CACHE_DIR={explicit} is not a directory")
        return path
    beside = ROOT / "build"
    if not INSTALLED and ((beside.is_dir() and os.access(beside, os.W_OK)) or os.access(ROOT, os.W_OK)):
        return beside
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jit"
