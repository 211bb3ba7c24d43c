"""The row format of every op table: `OP(NAME, column, ...)`, one a line.

C includes an op table as an X-macro; Python reads it here, once for every
table: the bundled stack machine's (jit.lang.optable gives its columns
meaning) and any op set's (jit.opsets, whose Python module reads its own
columns).  Anything malformed is a ValueError naming file:line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ROW = re.compile(r"^OP\((.*)\)\s*$")
_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class OpRow:
    """One row: the op's name, the other columns as written, where it is."""

    index: int  # its position in the table: the op's number (OP_<NAME> in C)
    name: str
    columns: tuple[str, ...]
    line: int
    text: str


def parse_table(text: str, filename: str) -> tuple[OpRow, ...]:
    rows: list[OpRow] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped.startswith("OP("):
            continue
        m = _ROW.match(stripped)
        if not m:
            raise ValueError(f"{filename}:{lineno}: malformed op table entry: {stripped}")
        name, *columns = (c.strip() for c in m.group(1).split(","))
        if not _NAME.match(name):
            raise ValueError(f"{filename}:{lineno}: op name {name!r} is not an upper-case C identifier")
        if name in seen:
            raise ValueError(f"{filename}:{lineno}: op {name} appears twice")
        seen.add(name)
        rows.append(OpRow(len(rows), name, tuple(columns), lineno, stripped))
    if not rows:
        raise ValueError(f"{filename}: no OP(...) rows")
    return tuple(rows)


_HELPERS = re.compile(r"#define HELPERS\(X\)((?:.*\\\n)*.*)")


def parse_helpers(text: str, filename: str) -> tuple[str, ...]:
    """The names of a header's `#define HELPERS(X) X(a) X(b) ...` list (one
    definition: C expands it, Python reads it here)."""
    m = _HELPERS.search(text)
    if not m:
        raise ValueError(f"{filename}: no `#define HELPERS(X)` list of helpers")
    names = tuple(re.findall(r"X\((\w+)\)", m.group(1)))
    if not names:
        raise ValueError(f"{filename}: its HELPERS(X) list names no helper")
    return names
