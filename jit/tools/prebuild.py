"""Build what a platform wheel ships (jit.build.prebuilt): `python -m jit.tools.prebuild DIR`.

setup.py runs it when a wheel is built, into the wheel's jit/prebuilt/.
Everything comes from the build cache when it is current there, so a wheel
built in a checkout that has run once costs only the copies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..build import prebuilt
from ..build.hostlib import ffi_artifact, hostlib_artifacts
from ..build.library import library_artifact
from ..build.peer_ir import raw_ir_artifact
from ..errors import JitError
from ..opsets import bundled_names, load
from ..opsets.build import interpreter_artifact
from ..runtime.memory import LIBC
from ..targets import TARGETS
from .anchors import anchor_artifacts


def artifacts() -> list[prebuilt.Artifact]:
    """Every artifact: the bundled op sets' stencil libraries (the stack
    machine's and the others', every target) and C interpreters (host); for
    the host, the stack machine's C library, the LLVM peer's IR and the C
    anchors; the cffi modules."""
    opsets = [load(name) for name in bundled_names()]
    return [
        *(library_artifact(t, opset=opset) for opset in opsets for t in TARGETS),
        *(interpreter_artifact(opset) for opset in opsets if opset.interpreter is not None),
        *hostlib_artifacts(),
        ffi_artifact("_jitlibc_cffi", LIBC),
        raw_ir_artifact(),
        *anchor_artifacts(),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jit.tools.prebuild", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the directory to fill (jit/prebuilt/ inside a wheel)")
    args = parser.parse_args(argv)
    try:
        built = artifacts()
        args.out.mkdir(parents=True, exist_ok=True)
        prebuilt.write(args.out, built)
    except (JitError, OSError) as e:
        print(f"prebuild: {e}", file=sys.stderr)
        return 1
    print(f"prebuild: {len(built)} artifacts, {sum(len(a.data) for a in built) / 1e6:.1f} MB, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
