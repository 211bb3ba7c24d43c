"""Where the sources and the build cache live."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STENCILS_DIR = ROOT / "stencils"


def cache_dir() -> Path:
    """The build cache: $JIT_CACHE_DIR, or build/ in the checkout."""
    return Path(os.environ.get("JIT_CACHE_DIR") or ROOT / "build")
