"""Golden files: the processed stencils of a few fixed test templates, per target.

In the spirit of CPython's test_jit_stencils: any change in code generation
or in our processing shows up as a diff here.  The goldens belong to one
clang version (named in their first line); with another clang they are
skipped, not passed.  JIT_UPDATE_GOLDEN=1 rewrites them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from jit.build.library import Job, build_stencil
from jit.targets import get_target
from jit.tools.disasm import describe_stencil

HERE = Path(__file__).parent
TEMPLATES = sorted((HERE / "templates").glob("*.c"))


def template_flags(path: Path) -> tuple[str, ...]:
    m = re.search(r"^ \* flags: (.*)$", path.read_text(), re.M)
    return tuple(m.group(1).split()) if m else ()


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_golden(clang, target, path):
    stencil, _ = build_stencil(clang, get_target(target), Job(path.stem, path, template_flags(path)))
    text = f"# {clang.version}\n" + describe_stencil(target, stencil)
    golden = HERE / "golden" / target / f"{path.stem}.txt"
    if os.environ.get("JIT_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    expected = golden.read_text()
    made_with = expected.splitlines()[0]
    if made_with != f"# {clang.version}":
        pytest.skip(f"golden made with {made_with[2:]!r}, this is {clang.version!r}")
    assert text == expected


def test_goldens_cover_each_kind_of_processing(target):
    """The set of goldens shows each thing processing does, on each target."""
    texts = {p.stem: (HERE / "golden" / target / f"{p.stem}.txt").read_text() for p in TEMPLATES}
    assert "_JIT_OPERAND0" in texts["add_operand"]
    assert "removed the final" in texts["add_operand"]
    assert re.search(r"(inverted|retargeted) the", texts["branch"])
    assert " data:" in texts["float_constant"] and " data" in texts["float_constant"].split(" data:")[0]
    assert "_JIT_HELPER_print_int" in texts["helper_call"]
    abs64 = "R_X86_64_64" if target.startswith("x86") else "R_AARCH64_ABS64"
    assert f"{abs64} _JIT_CONTINUE" in texts["got"]  # the synthesised GOT entry
