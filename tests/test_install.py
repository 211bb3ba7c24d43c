"""A built wheel installs and runs where there is no clang and no checkout.

The wheel is built from this checkout as users build it (pip, isolated),
then installed into a fresh venv.  Its dependencies are not downloaded
again: a .pth file lends the venv this environment's site-packages (plain
paths only, so this checkout's editable install does not come with them).
Every run has PATH set to an empty directory (no clang, no compiler at all)
and an empty build cache: whatever it runs comes from the wheel's prebuilt
parts (jit.build.prebuilt), or it fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from jit.build.library import library_path, load_library, shipped_name
from jit.paths import ROOT
from jit.targets import TARGETS, host_target

HOST = host_target()
pytestmark = pytest.mark.skipif(HOST is None, reason="a platform wheel is built for a host with a native target")


def test_every_subpackage_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(ROOT).parts[:-1]) for p in (ROOT / "jit").rglob("__init__.py")}
    assert found <= listed, found - listed


# pip is run without PYTHONPATH: a checkout on it (with the jit.egg-info a
# build leaves there) would count as jit already installed.
PIP_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)]
    out = subprocess.run(build, capture_output=True, text=True, check=False, cwd=dist, env=PIP_ENV)
    assert out.returncode == 0, out.stderr
    (found,) = dist.glob("jit-*.whl")
    return found


def make_venv(wheel: Path, where: Path) -> tuple[Path, Path]:
    """A fresh venv with the wheel installed: (its python, its site-packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, env=PIP_ENV)
    query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([python, "-c", query], check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, site


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> tuple[Path, Path]:
    return make_venv(wheel, tmp_path_factory.mktemp("venv"))


def run(python: Path, *argv: str, cache: Path, path: str | None = None) -> subprocess.CompletedProcess:
    empty = cache.parent / "no-compilers"
    empty.mkdir(exist_ok=True)
    env = {"PATH": path or str(empty), "JIT_CACHE_DIR": str(cache), "HOME": str(cache.parent)}
    return subprocess.run([str(python), *argv], env=env, cwd=cache.parent, capture_output=True, text=True, check=False)


def test_the_wheel_is_a_platform_wheel_carrying_the_stencils_built_here(wheel):
    assert wheel.name.endswith(f"-py3-none-{sysconfig.get_platform().replace('-', '_')}.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {"jit/stencils/bodies.h", "jit/programs/fib.uop", "jit/prebuilt/libjitvm.so"} <= names
        for target in TARGETS:  # byte for byte the library this checkout builds (reproducible)
            shipped = z.read(f"jit/prebuilt/{shipped_name(target)}")
            load_library(target)
            assert shipped == library_path(target).read_bytes(), target


def test_without_clang_every_engine_backend_and_target_runs(venv, tmp_path):
    python, site = venv
    cache = tmp_path / "cache"
    fib = str(site / "jit" / "programs" / "fib.uop")
    runs = [
        ["--engine", "py"],
        ["--engine", "switch"],
        ["--engine", "tailcall"],
        ["--engine", "jit"],
        ["--engine", "jit", "--eager"],
        ["--backend", "llvm-O0"],
        ["--backend", "llvm-O2", "--eager"],
        ["--target", "aarch64-linux" if HOST == "x86_64-linux" else "x86_64-linux"],  # emulated
    ]
    for options in runs:
        out = run(python, "-m", "jit", "run", fib, "20", *options, cache=cache)
        assert (out.returncode, out.stdout) == (0, "6765\n"), (options, out.stderr)
        assert "building" not in out.stderr, options
    api = "import jit; print(jit.__file__); print(jit.run(jit.load(jit.paths.PROGRAMS_DIR / 'fib.uop'), [20]).output)"
    out = run(python, "-c", api, cache=cache)
    assert out.returncode == 0, out.stderr
    where, output = out.stdout.splitlines()
    assert where.startswith(str(site)) and output == "b'6765\\n'"
    out = run(python, "-m", "jit", "validate", "--op", "ADD", cache=cache)
    assert out.returncode == 0 and "pass" in out.stdout, out.stderr
    # The bundled op set (eBPF) too: its stencils and its C interpreter are in the wheel.
    program = tmp_path / "sum.data"
    program.write_text("-- asm\nldxb r0, [r1+1]\nadd r0, r2\nexit\n-- mem\n05 07\n-- result\n0x9\n")
    for options in (["--engine", "py"], ["--engine", "interp"], ["--engine", "jit"], ["--target", "aarch64-linux"]):
        out = run(python, "-m", "jit", "run", "--opset", "ebpf", str(program), *options, cache=cache)
        assert (out.returncode, out.stdout) == (0, "0x9\n"), (options, out.stderr)
    out = run(python, "-m", "jit", "validate", "--opset", "ebpf", "--op", "ldxw", cache=cache)
    assert out.returncode == 0 and "0 mismatches" in out.stdout, out.stderr
    # Nothing was built: the cache holds only what llvmlite optimised (no clang
    # in that) and the op sets' manifests as tomllib read them.
    kept = sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())
    assert all(k.startswith("llvm/") or re.fullmatch(r"opsets/manifest-\w+\.json", k) for k in kept), kept


def test_without_clang_the_benchmark_runs_with_its_c_anchors(venv, tmp_path):
    python, _ = venv
    measure = (
        "from jit.tools import benchmark; "
        "r = benchmark.measure(True, {'fib': 10, 'count': 500}, (1, 2)); "
        "print(sorted(r.run_seconds['fib']))"
    )
    out = run(python, "-c", measure, cache=tmp_path / "cache")
    assert out.returncode == 0, out.stderr
    assert "'c_O0', 'c_O2'" in out.stdout and "'llvm-O2'" in out.stdout, out.stdout


def test_edited_sources_are_rebuilt_and_then_need_clang(wheel, tmp_path):
    python, site = make_venv(wheel, tmp_path / "venv")  # (its own: the other tests keep the wheel as shipped)
    with (site / "jit" / "stencils" / "helpers.c").open("a") as f:
        f.write("/* edited */\n")
    argv = ["-m", "jit", "run", str(site / "jit" / "programs" / "fib.uop"), "10", "--engine", "switch"]
    cache = tmp_path / "cache"
    out = run(python, *argv, cache=cache)
    assert out.returncode in (1, 2) and "clang" in out.stderr and "Traceback" not in out.stderr, out.stderr
    out = run(python, *argv, cache=cache, path=os.environ["PATH"])
    assert (out.returncode, out.stdout) == (0, "55\n"), out.stderr
    assert (cache / "hostlib").is_dir()  # built from the edited sources, by clang
