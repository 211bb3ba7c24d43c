"""Finding Clang, and the flags that turn a template into a stencil for a target (jit.targets)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import ToolchainError
from ..paths import SOURCE_ROOT, cache_dir
from ..targets import Target

MIN_CLANG = 19
INSTALL_HINT = (
    "install it with `apt-get install clang-19 lld-19 llvm-19` (Debian 12 or later), "
    "or point CLANG= at a clang 19 or newer"
)

# Flags every stencil needs, whatever the target: no runtime to lean on, no
# tables or unwind info to carry, and no paths of this machine in the output.
COMMON_FLAGS = (
    "-c",
    "-std=c11",
    "-Os",  # measured against -O3 (bench --ablation): as fast or faster, and smaller
    "-ffreestanding",
    "-fno-builtin",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-fno-jump-tables",
    "-fomit-frame-pointer",
    "-fno-math-errno",
    "-ffp-contract=off",  # no fused multiply-add: results must match IEEE step by step
    "-fno-common",
    "-fno-addrsig",
    "-fno-ident",
    "-Wall",
    "-Werror",
)


@dataclass(frozen=True)
class Clang:
    path: str
    version: str  # the first line of --version, which names vendor and version
    major: int


def _candidates() -> list[str]:
    import shutil  # (this module's imports are on every run's path; finding clang is not)

    names = [f"clang-{v}" for v in range(MIN_CLANG, MIN_CLANG + 12)] + ["clang"]
    return [p for p in (shutil.which(n) for n in names) if p]


def _probe_cache() -> Path:
    return cache_dir() / "clang-probe.json"


def _identity(path: str) -> str | None:
    """The binary a clang command resolves to, with its size and time: a
    changed or replaced clang is probed again."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return f"{real}:{st.st_size}:{st.st_mtime_ns}"


def probe_clang(path: str) -> Clang:
    """Ask one clang for its version (remembered per binary: every run's cache
    keys need it); refuse it if it is too old."""
    identity = _identity(path)
    try:
        known = json.loads(_probe_cache().read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if identity is not None and isinstance(known.get(identity), str):
        return _check_version(path, known[identity], 0)
    import subprocess

    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as e:
        raise ToolchainError(f"cannot run clang at {path}: {e.strerror}; {INSTALL_HINT}") from e
    except subprocess.TimeoutExpired as e:
        raise ToolchainError(f"{path} --version did not answer in 60 s") from e
    clang = _check_version(path, out.stdout, out.returncode)
    if identity is not None:
        known[identity] = clang.version
        try:
            _probe_cache().parent.mkdir(parents=True, exist_ok=True)
            tmp = _probe_cache().with_suffix(f".{os.getpid()}")
            tmp.write_text(json.dumps(known))
            os.replace(tmp, _probe_cache())
        except OSError:
            pass  # (a cache that cannot be written only costs a probe next time)
    return clang


def _check_version(path: str, text: str, returncode: int) -> Clang:
    first = text.splitlines()[0] if text else ""
    m = re.search(r"clang version (\d+)\.(\d+)\.(\d+)", text)
    if returncode != 0 or not m:
        raise ToolchainError(f"{path} does not look like clang (--version said {first!r})")
    major = int(m.group(1))
    if major < MIN_CLANG:
        raise ToolchainError(
            f"{path} is clang {m.group(0).split()[-1]}, but stencils need clang {MIN_CLANG} "
            f"or newer (preserve_none and musttail on both targets); {INSTALL_HINT}"
        )
    return Clang(path, first.strip(), major)


@cache
def find_clang() -> Clang:
    """CLANG=, else clang-19, clang-20, ..., else clang."""
    explicit = os.environ.get("CLANG")
    if explicit:
        import shutil

        path = shutil.which(explicit)
        if path is None:
            raise ToolchainError(f"CLANG={explicit} was not found; {INSTALL_HINT}")
        return probe_clang(path)
    found = _candidates()
    if found:
        return probe_clang(found[0])
    raise ToolchainError(f"no clang found on PATH; {INSTALL_HINT}")


def compile_flags(target: Target, opt: str = "-Os", extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The flags that shape a stencil: recorded in the library and hashed.

    Clang runs in the op set's directory with relative paths, so nothing here
    depends on where it is.  `opt` replaces -Os (ablation: -O3); `extra` are
    the op set's own flags for the target.
    """
    common = tuple(opt if f == "-Os" else f for f in COMMON_FLAGS)
    return (f"--target={target.triple}", *common, *target.flags, *extra, "-I.")


def local_flags(root: Path = SOURCE_ROOT) -> tuple[str, ...]:
    """Flags that mention where the sources are; they must not change the bytes."""
    return (f"-ffile-prefix-map={root}/=",)
