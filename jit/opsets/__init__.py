"""Op sets as data: any VM's ops, from a directory, to stencils and runs.

An op set is a directory holding `opset.toml`, which names its parts:

    name = "ebpf"
    table = "ops.def"        # OP(NAME, ...) rows: one stencil each, in order
    template = "template.c"  # one op as one stencil (-DTHIS_OP=OP_<NAME>)
    shim = "shim.c"          # the C-ABI way in: int64_t f(void *state, void *code)
    interpreter = "interp.c" # optional: a C interpreter of the same bodies
    python = "opset.py"      # front end, reference semantics, state layout
    helper_source = "helpers.c"  # optional: C functions the bodies call,
    helpers = ["mix"]        # ... by these names (_JIT_HELPER_mix), built as stencils
    host_helpers = "helpers.h"   # optional: helpers the host provides instead,
                                 # named by the X(name) lines of its HELPERS(X)
    [flags]                  # extra clang flags per target
    aarch64-linux = ["-mno-outline-atomics"]

Its C sources, headers, table and manifest (BUILD_SUFFIXES, anywhere in the
directory) are what the stencils are built from: the library is cached per
op set, target and their content (jit.build.library, the one builder).  The
Python module's contract is in docs/opsets.md and jit.opsets.model; it may
add variants of an op's stencil (`stencil_variants`: the stack machine's
stack caching).  The bundled op sets are the stack machine (`stack`, whose
directory is stencils/) and those beside this module; `load("ebpf")` finds
them by name, `load(path)` takes any directory.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, cast

from ..errors import JitError
from ..lang import table
from ..lang.table import OpRow
from ..paths import STENCILS_DIR

if TYPE_CHECKING:
    from .model import OpSetModule

BUNDLED_DIR = Path(__file__).resolve().parent
STACK = "stack"  # the bundled stack machine, whose op set is stencils/
_C_NAME = re.compile(r"^[A-Za-z_]\w*$")
_OPSET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
HELPER_STENCIL = "helper."  # a helper's stencil in an op set's library: helper.<name>


class OpSetError(JitError):
    """An op set that cannot be loaded: names the file (and line)."""


@dataclass(frozen=True)
class OpSet:
    name: str
    root: Path
    table: tuple[OpRow, ...]
    template: str  # file names, relative to root (clang runs in root)
    shim: str
    interpreter: str | None
    python: str
    flags: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (target, extra clang flags)
    helper_source: str | None = None
    helpers: tuple[str, ...] = ()
    host_helpers: tuple[str, ...] = ()  # helpers the host provides (not stencils)
    stencil_files: tuple[str, ...] | None = None  # the files the stencils are built from, if named
    stamp: tuple = field(default=(), compare=False)  # its files' times and sizes when it was loaded

    def flags_for(self, target: str) -> tuple[str, ...]:
        return dict(self.flags).get(target, ())

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(row.name for row in self.table)

    def sources(self) -> list[Path]:
        """Every file the builds read (BUILD_SUFFIXES)."""
        return _sources(self.root)

    def stencil_sources(self) -> list[Path]:
        """The files its stencils are built from (the library's key): those
        the manifest names in `stencil_sources` (with the manifest), or else
        every file the builds read."""
        if self.stencil_files is None:
            return self.sources()
        return sorted({self.root / "opset.toml", *(self.root / name for name in self.stencil_files)})

    @property
    def module(self) -> OpSetModule:
        """The op set's Python module (docs/opsets.md has its contract)."""
        digest = hashlib.sha256()
        for source in sorted(self.root.glob("*.py")):  # (the module and the siblings it imports)
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
        return cast("OpSetModule", _module(self.root / self.python, self.name, digest.hexdigest()))

    def runnable(self) -> OpSetModule:
        """The module, checked to provide what the generic engines call
        (jit.opsets.model.CONTRACT); an op set that brings its own runtime
        (the stack machine: jit.api) need not."""
        from .model import CONTRACT

        module = self.module
        missing = [name for name in CONTRACT if not hasattr(module, name)]
        if missing:
            raise OpSetError(
                f"{self.root / self.python}: op set {self.name}'s module does not provide {', '.join(missing)}, "
                "which the engines need to run its programs (docs/opsets.md)"
            )
        return module


BUILD_SUFFIXES = (".c", ".h", ".def", ".inc", ".toml")  # what clang and the table are read from


def _sources(root: Path) -> list[Path]:
    """The files the builds read: C, headers, the table, the manifest (not
    the Python module, whose changes re-import it, nor programs kept beside)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in BUILD_SUFFIXES)


def stamp(root: Path) -> tuple:
    """What changes when a file of the op set does (times and sizes: no hashing)."""
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in _sources(root))


def current(opset: OpSet) -> OpSet:
    """The op set as its files are now: loaded again if one changed since
    (an edited table renumbers the ops; the engines must not mix numberings)."""
    return opset if stamp(opset.root) == opset.stamp else _load(opset.root)


def parse_table(text: str, filename: str) -> tuple[OpRow, ...]:
    """An op table's rows (jit.lang.table); a malformed one is an OpSetError."""
    try:
        return table.parse_table(text, filename)
    except ValueError as e:
        raise OpSetError(str(e)) from None


def _text(root: Path, name: str, what: str) -> str:
    path = root / name
    if not path.resolve().is_relative_to(root):
        raise OpSetError(f"{root / 'opset.toml'}: {what} {name!r} is not inside the op set's directory")
    try:
        return path.read_text()
    except OSError as e:
        raise OpSetError(f"{root / 'opset.toml'}: {what} {name!r}: {e.strerror}") from None


def _bundled() -> dict[str, Path]:
    return {STACK: STENCILS_DIR, **{p.parent.name: p.parent for p in BUNDLED_DIR.glob("*/opset.toml")}}


def load(where: str | Path) -> OpSet:
    """An op set by bundled name ("stack", "ebpf") or by the path of its directory."""
    path = Path(where)
    if not path.is_dir() and str(where) in _bundled():
        path = _bundled()[str(where)]
    if not (path / "opset.toml").is_file():
        bundled = ", ".join(bundled_names())
        raise OpSetError(f"{where}: not an op set (no opset.toml there); bundled op sets: {bundled}")
    return _load(path.resolve())


def _read_manifest(manifest: Path) -> dict:
    """opset.toml as a dict.  What tomllib made of it is kept in the build
    cache (JSON, by the file's path, with the text it was made from),
    because importing tomllib costs more than the rest of a run's start-up
    for the op set."""
    import json

    from ..paths import cache_dir

    try:
        text = manifest.read_text()
    except OSError as e:
        raise OpSetError(f"{manifest}: {e.strerror}") from None
    kept = cache_dir() / "opsets" / f"manifest-{hashlib.sha256(str(manifest).encode()).hexdigest()[:16]}.json"
    try:
        cached = json.loads(kept.read_text())
        if cached["text"] == text:
            return cached["spec"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    import tomllib

    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise OpSetError(f"{manifest}: {e}") from None
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        temporary = kept.with_suffix(f".{os.getpid()}")
        temporary.write_text(json.dumps({"text": text, "spec": spec}))
        os.replace(temporary, kept)
    except (OSError, TypeError, ValueError):
        pass  # (a cache that cannot be written, or a manifest JSON cannot hold: parsed each time)
    return spec


def _load(root: Path) -> OpSet:
    loaded_at = stamp(root)
    manifest = root / "opset.toml"
    spec = _read_manifest(manifest)
    known = {
        "name",
        "table",
        "template",
        "shim",
        "interpreter",
        "python",
        "flags",
        "helper_source",
        "helpers",
        "host_helpers",
        "stencil_sources",
    }
    unknown = set(spec) - known
    if unknown:
        raise OpSetError(f"{manifest}: unknown keys {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    for key in ("name", "table", "template", "shim", "python"):
        if not isinstance(spec.get(key), str):
            raise OpSetError(f"{manifest}: `{key}` must be given, as a string")
    if not _OPSET_NAME.match(spec["name"]):
        raise OpSetError(f"{manifest}: name {spec['name']!r}: letters, digits, _ and - only (a cache directory)")
    flags = spec.get("flags", {})
    if not isinstance(flags, dict) or not all(
        isinstance(v, list) and all(isinstance(f, str) for f in v) for v in flags.values()
    ):
        raise OpSetError(f"{manifest}: [flags] maps target names to lists of strings")
    from ..targets import TARGETS

    for target in flags:
        if target not in TARGETS:
            raise OpSetError(f"{manifest}: [flags] names target {target!r}; targets are {', '.join(sorted(TARGETS))}")
    rows = parse_table(_text(root, spec["table"], "table"), str(root / spec["table"]))
    for key in ("template", "shim", "python"):
        _text(root, spec[key], key)
    interpreter = spec.get("interpreter")
    if interpreter is not None:
        _text(root, interpreter, "interpreter")
    helper_source, helpers = spec.get("helper_source"), spec.get("helpers", [])
    if not isinstance(helpers, list) or not all(isinstance(h, str) and _C_NAME.match(h) for h in helpers):
        raise OpSetError(f"{manifest}: `helpers` is a list of C function names")
    if bool(helpers) != (helper_source is not None):
        raise OpSetError(f"{manifest}: `helpers` and `helper_source` go together")
    if helper_source is not None:
        _text(root, helper_source, "helper_source")
    host_helpers: tuple[str, ...] = ()
    if "host_helpers" in spec:
        header = spec["host_helpers"]
        if not isinstance(header, str):
            raise OpSetError(f"{manifest}: `host_helpers` names a header (with a HELPERS(X) list)")
        try:
            host_helpers = table.parse_helpers(_text(root, header, "host_helpers"), str(root / header))
        except ValueError as e:
            raise OpSetError(str(e)) from None
    stencil_sources = spec.get("stencil_sources")
    if stencil_sources is not None:
        if not isinstance(stencil_sources, list) or not all(isinstance(n, str) for n in stencil_sources):
            raise OpSetError(f"{manifest}: `stencil_sources` is a list of file names")
        for name in stencil_sources:
            _text(root, name, "stencil_sources")
        stencil_sources = tuple(stencil_sources)
    return OpSet(
        spec["name"],
        root,
        rows,
        spec["template"],
        spec["shim"],
        interpreter,
        spec["python"],
        tuple(sorted((k, tuple(v)) for k, v in flags.items())),
        helper_source,
        tuple(helpers),
        host_helpers,
        stencil_sources,
        loaded_at,
    )


@cache
def _module(path: Path, name: str, digest: str) -> ModuleType:
    """The op set's Python module, imported from its file (the directory may
    be anywhere) as a module of a package made of that directory, so that it
    can import its siblings (`from .isa import ...`); imported afresh when
    one of the directory's Python files changes (digest)."""
    safe = re.sub(r"\W", "_", name)
    package = f"jit_opset_{safe}_{digest[:16]}"
    made = ModuleType(package)
    made.__path__ = [str(path.parent)]
    made.__package__ = package
    sys.modules.setdefault(package, made)
    try:
        return importlib.import_module(f"{package}.{path.stem}")
    except Exception as e:
        for loaded in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[loaded]
        raise OpSetError(f"{path}: importing it failed: {type(e).__name__}: {e}") from e


def bundled_names() -> list[str]:
    return sorted(_bundled())


_STACK: list[OpSet] = []


def stack_machine() -> OpSet:
    """The bundled stack machine's op set, as its files are now."""
    if not _STACK:
        _STACK.append(load(STACK))
    _STACK[0] = current(_STACK[0])
    return _STACK[0]


def run(opset: OpSet, program: object, engine: str = "jit", target: str | None = None):
    """Run a parsed program on one engine (jit.opsets.engines.run)."""
    from .engines import Engine
    from .engines import run as run_on

    return run_on(opset, program, Engine(engine), target)


def validate(opset: OpSet, targets: Sequence[str] | None = None, ops: Sequence[str] | None = None, seed: int = 0):
    """Every op's cases on every engine against the reference (jit.opsets.validate)."""
    from .validate import validate as check

    return check(opset, targets, ops, seed)
