#!/usr/bin/env python3
"""Build stencil libraries: every op of an op set, for every target, on any host.

python build_stencils.py [--opset NAME|DIR] [--target T ...] [--jobs N] [--keep-objects DIR] [--force]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from jit.build.library import build_library, objects_dir
from jit.errors import JitError
from jit.opsets import load
from jit.targets import TARGETS, target_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opset", default="stack", metavar="NAME|DIR", help="default: stack, the stack machine")
    parser.add_argument("--target", action="append", help=f"{', '.join(TARGETS)}; repeatable; default: all")
    parser.add_argument("--jobs", type=int, default=None, help="parallel clang processes (default: cores)")
    parser.add_argument("--keep-objects", type=Path, metavar="DIR", help="copy the ELF objects to DIR/TARGET/")
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:
        opset = load(args.opset)
        for target in [target_name(t) for t in args.target or TARGETS]:
            start = time.perf_counter()
            lib, rebuilt = build_library(target, opset=opset, jobs=args.jobs, force=args.force)
            took = time.perf_counter() - start
            state = f"built in {took:.1f} s" if rebuilt else "cached, nothing to rebuild"
            size = sum(len(lib.ops[op].code) for op in opset.ops)
            print(
                f"{target}: op set {opset.name}: {len(opset.ops)} ops, {len(lib.ops) - len(opset.ops)} more"
                f" stencils (variants, helpers) + shim, {size} bytes of code in the ops, {state} (key {lib.key})"
            )
            if args.keep_objects:
                dest = args.keep_objects / target
                shutil.copytree(objects_dir(target, opset=opset), dest, dirs_exist_ok=True)
                print(f"{target}: objects in {dest}")
    except JitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
