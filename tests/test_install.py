"""A normal (not editable) install works: the package carries its C sources and programs.

The wheel is built from this checkout and installed (without its
dependencies, which this environment has) into a directory of its own; the
CLI and the API then run from there, not from the checkout.  The install
finds the same stencil library in the cache: same sources, flags and clang
give the same key, whichever layout they come from.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

from jit.paths import ROOT, cache_dir


def test_every_subpackage_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(ROOT).parts[:-1]) for p in (ROOT / "jit").rglob("__init__.py")}
    assert found <= listed, found - listed


def test_a_built_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    from jit.build.library import load_library
    from jit.targets import host_target

    load_library(host_target() or "x86_64-linux")  # (current in the cache, where the installed copy looks)
    dist, site = tmp_path / "dist", tmp_path / "site"
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        str(dist),
        str(ROOT),
    ]  # (isolated, as users build)
    subprocess.run(build, check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = dist.glob("jit-*.whl")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    assert (site / "jit" / "stencils" / "bodies.h").is_file() and (site / "jit" / "programs" / "fib.uop").is_file()
    env = dict(os.environ, PYTHONPATH=str(site), JIT_CACHE_DIR=str(cache_dir()))
    program = site / "jit" / "programs" / "fib.uop"
    for engine in ("py", "switch", "jit"):
        out = subprocess.run(
            [sys.executable, "-m", "jit", "run", str(program), "20", "--engine", engine],
            cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert (out.returncode, out.stdout) == (0, "6765\n"), out.stderr
        assert "building the stencil library" not in out.stderr  # the checkout's cached library, by its key
    api = "import jit; print(jit.__file__); print(jit.run(jit.load(jit.paths.PROGRAMS_DIR / 'fib.uop'), [20]).output)"
    out = subprocess.run(
        [sys.executable, "-c", api], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    where, output = out.stdout.splitlines()
    assert where.startswith(str(site)) and output == "b'6765\\n'"
