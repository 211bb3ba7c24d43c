"""The relocation table (stencils/relocs.def) against pyelftools' own numbering."""

from __future__ import annotations

import pytest
from elftools.elf.enums import ENUM_RELOC_TYPE_AARCH64, ENUM_RELOC_TYPE_x64

from jit.build import relocs
from jit.build.relocs import Branch, Encoding, parse_relocs

PYELFTOOLS = {"EM_X86_64": ENUM_RELOC_TYPE_x64, "EM_AARCH64": ENUM_RELOC_TYPE_AARCH64}


def test_numbers_agree_with_pyelftools_wherever_it_names_the_type():
    checked = 0
    for row in relocs.table():
        known = PYELFTOOLS[row.machine]
        if row.name in known:
            assert known[row.name] == row.number, row.name
            checked += 1
    assert checked >= 25  # (it lacks a few, e.g. R_AARCH64_LDST128_ABS_LO12_NC)


def test_rows_are_consistent():
    names = [r.name for r in relocs.table()]
    assert len(names) == len(set(names))
    for row in relocs.table():
        assert (row.encoding is Encoding.GOT) == (row.becomes is not None), row.name
        if row.becomes:
            assert relocs.get(row.becomes).machine == row.machine
        if row.branch in (Branch.COND, Branch.JUMP, Branch.CALL):
            assert row.encoding is Encoding.BRANCH and row.machine == "EM_AARCH64"
    assert relocs.get("R_AARCH64_CONDBR19").reach == 1 << 20  # b.cond reaches +-1 MiB
    assert relocs.short_branch("R_AARCH64_JUMP26") and not relocs.short_branch("R_AARCH64_CALL26")


def test_a_malformed_row_names_its_line():
    with pytest.raises(ValueError, match=r"relocs.def:3: malformed"):
        parse_relocs("/* */\n\nRELOC(R_X, 1, X86_64, NOPE, 0, 0, NONE, NONE)\n")
