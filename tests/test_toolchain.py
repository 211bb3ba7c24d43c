"""Finding clang: a missing or too old clang is refused with advice, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jit.build import toolchain
from jit.errors import ToolchainError
from jit.paths import ROOT


def fake_clang(tmp_path, version_text: str, name: str = "clang"):
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\necho '{version_text}'\n")
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def fresh_lookup():
    toolchain.find_clang.cache_clear()
    yield
    toolchain.find_clang.cache_clear()


def test_missing_clang_named_by_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CLANG", str(tmp_path / "no-such-clang"))
    with pytest.raises(ToolchainError, match="was not found; install it with `apt-get install clang-19"):
        toolchain.find_clang()


def test_no_clang_on_path(monkeypatch, tmp_path):
    monkeypatch.delenv("CLANG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match="no clang found on PATH; install it"):
        toolchain.find_clang()


def test_old_clang_is_refused(monkeypatch, tmp_path):
    old = fake_clang(tmp_path, "Debian clang version 14.0.6")
    monkeypatch.setenv("CLANG", str(old))
    with pytest.raises(ToolchainError, match=r"is clang 14\.0\.6, but stencils need clang 19 or newer"):
        toolchain.find_clang()


def test_old_plain_clang_on_path_is_refused(monkeypatch, tmp_path):
    fake_clang(tmp_path, "clang version 17.0.1")
    monkeypatch.delenv("CLANG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"is clang 17\.0\.1"):
        toolchain.find_clang()


def test_versioned_clang_is_preferred(monkeypatch, tmp_path):
    fake_clang(tmp_path, "clang version 17.0.1")
    fake_clang(tmp_path, "clang version 21.1.0", "clang-21")
    monkeypatch.delenv("CLANG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert toolchain.find_clang().major == 21


def test_something_that_is_not_clang(monkeypatch, tmp_path):
    monkeypatch.setenv("CLANG", str(fake_clang(tmp_path, "gcc (Debian 12.2.0-14) 12.2.0")))
    with pytest.raises(ToolchainError, match="does not look like clang"):
        toolchain.find_clang()


def test_real_clang_is_at_least_19(clang):
    assert clang.major >= 19


def test_build_script_reports_old_clang_cleanly(tmp_path):
    """The CLI says what is wrong in one line and exits 2, with no traceback."""
    env = dict(os.environ, CLANG=str(fake_clang(tmp_path, "clang version 18.1.8")), JIT_CACHE_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "build_stencils.py", "--target", "x86_64-linux"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ") and "clang 18.1.8" in out.stderr
    assert "apt-get install clang-19" in out.stderr


def test_each_target_is_registered_under_its_own_name():
    from jit.targets import TARGETS, get_target

    assert len(TARGETS) == 2 and all(get_target(name).name == name for name in TARGETS)
    with pytest.raises(ToolchainError, match="unknown target"):
        get_target("sparc-linux")
