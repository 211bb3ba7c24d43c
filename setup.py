"""The wheel ships prebuilt parts (jit.build.prebuilt), so it is a platform wheel.

pyproject.toml holds the project's metadata; this file only adds the build
step: after the Python files are laid out, `python -m jit.tools.prebuild`
fills jit/prebuilt/ with the stencil libraries of every target and, for
this host, the C library, the LLVM peer's IR and the C anchors.  That needs
clang 19 or newer here (once); the installed wheel does not.
JIT_PREBUILT=0 builds a pure wheel without them, which needs clang on first use.
An editable install never prebuilds: a checkout uses its build cache.
"""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PREBUILD = os.environ.get("JIT_PREBUILT", "1") != "0"


class BuildWithPrebuilt(build_py):
    def run(self):
        super().run()
        if not PREBUILD or self.editable_mode:
            return
        out = Path(self.build_lib) / "jit" / "prebuilt"
        env = dict(os.environ, PYTHONPATH=str(HERE))
        result = subprocess.run([sys.executable, "-m", "jit.tools.prebuild", str(out)], cwd=HERE, env=env, check=False)
        if result.returncode != 0:
            raise SystemExit(
                "building the wheel's prebuilt stencils failed (above); a wheel without them, which needs "
                "clang 19 on first use, is built with JIT_PREBUILT=0"
            )


class WithBinaries(Distribution):
    """Carries binaries (though no extension module): installed as platform code."""

    def has_ext_modules(self):
        return PREBUILD


class PlatformWheel(bdist_wheel):
    """Tagged py3-none-<platform>: the C parts are loaded through cffi's ABI
    mode, so they fit any Python 3, but only this machine's architecture."""

    def get_tag(self):
        if not PREBUILD:
            return super().get_tag()
        return "py3", "none", sysconfig.get_platform().replace("-", "_").replace(".", "_")


setup(distclass=WithBinaries, cmdclass={"build_py": BuildWithPrebuilt, "bdist_wheel": PlatformWheel})
