"""Where the sources and the build cache live."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STENCILS_DIR = ROOT / "stencils"


def cache_dir() -> Path:
    """The build cache: $JIT_CACHE_DIR; else build/ beside the package when
    that can be written (a checkout); else the per-user cache
    ($XDG_CACHE_HOME/jit, ~/.cache/jit), as for an installed package."""
    from .errors import JitError

    explicit = os.environ.get("JIT_CACHE_DIR")
    if explicit:
        path = Path(explicit)
        if path.exists() and not path.is_dir():
            raise JitError(f"JIT_CACHE_DIR={explicit} is not a directory")
        return path
    beside = ROOT / "build"
    if (beside.is_dir() and os.access(beside, os.W_OK)) or (not beside.exists() and os.access(ROOT, os.W_OK)):
        return beside
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jit"
