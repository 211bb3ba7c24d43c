"""The package's type hints hold: mypy runs clean on it."""

from __future__ import annotations

import subprocess
import sys

from jit.paths import ROOT


def test_mypy_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir", str(ROOT / "build" / "mypy")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
