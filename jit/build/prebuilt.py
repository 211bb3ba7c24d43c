"""What a platform wheel carries already built, so that an install runs without clang.

When the wheel is built (setup.py, through jit.tools.prebuild), every
artifact clang would otherwise make on first use is built and shipped in
jit/prebuilt/: the stencil libraries for every target, the host library,
the LLVM peer's IR and the C anchors, with the cffi modules beside them.
Its manifest names each artifact's *source key*: the hash of everything it
is built from except clang itself.

Each builder asks here first.  When the sources it would build from hash to
the shipped key, the shipped file is used and clang is not even looked for;
when they differ (an edited op, another flag), the builder goes on to its
cache and clang, exactly as without a wheel.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..paths import PACKAGE

PREBUILT_DIR = PACKAGE / "prebuilt"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Artifact:
    """One file a wheel can carry."""

    name: str  # its path under jit/prebuilt/
    key: str  # the source key (clang's version not in it)
    data: bytes


def source_key(parts: Iterable[tuple[str, bytes]]) -> str:
    """A hash of labelled inputs (each length-prefixed, so no two lists collide)."""
    h = hashlib.sha256()
    for label, data in parts:
        h.update(f"{label}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:24]


def files_key(flags: Sequence[str], files: Iterable[Path]) -> str:
    """The source key of a clang command: its flags and the files it reads."""
    return source_key([("flags", "\0".join(flags).encode()), *((p.name, p.read_bytes()) for p in files)])


def with_clang(key: str, clang_version: str) -> str:
    """A cache key: the source key and the clang that builds from it."""
    return source_key([("sources", key.encode()), ("clang", clang_version.encode())])


@cache
def _manifest() -> dict[str, str]:
    try:
        data = json.loads((PREBUILT_DIR / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def find(name: str, key: str) -> Path | None:
    """The shipped file `name`, if it was built from sources with this key."""
    if _manifest().get(name) != key:
        return None
    path = PREBUILT_DIR / name
    return path if path.is_file() else None


def write(out: Path, artifacts: Iterable[Artifact]) -> None:
    """Lay out a prebuilt directory: the artifacts and their manifest."""
    keys = {}
    for a in artifacts:
        if a.name in keys:
            raise ValueError(f"two prebuilt artifacts are named {a.name}")
        (out / a.name).parent.mkdir(parents=True, exist_ok=True)
        (out / a.name).write_bytes(a.data)
        keys[a.name] = a.key
    (out / MANIFEST).write_text(json.dumps(keys, indent=1, sort_keys=True) + "\n")
