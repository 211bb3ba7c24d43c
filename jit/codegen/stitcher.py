"""Which code stitches: the C fast path or the Python reference (jit.codegen.emit says how)."""

from __future__ import annotations

from enum import Enum


class Stitcher(Enum):
    C = "c"  # stencils/stitch.c, through jit.codegen.cstitch: the fast path
    PYTHON = "python"  # jit.codegen.stitch: the reference
