#!/usr/bin/env python3
"""Build the stencil libraries: every op, for every target, on any host.

python build_stencils.py [--target T ...] [--jobs N] [--keep-objects DIR] [--force]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from jit.build.library import build_library, objects_dir
from jit.errors import JitError
from jit.lang.optable import optable
from jit.targets import TARGETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="repeatable; default: all")
    parser.add_argument("--jobs", type=int, default=None, help="parallel clang processes (default: cores)")
    parser.add_argument("--keep-objects", type=Path, metavar="DIR", help="copy the ELF objects to DIR/TARGET/")
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:
        for target in args.target or list(TARGETS):
            start = time.perf_counter()
            lib, rebuilt = build_library(target, jobs=args.jobs, force=args.force)
            took = time.perf_counter() - start
            state = f"built in {took:.1f} s" if rebuilt else "cached, nothing to rebuild"
            size = sum(len(lib.ops[op.name].code) for op in optable())
            print(
                f"{target}: {len(optable())} ops, {len(lib.ops) - len(optable())} stack-caching variants + shim,"
                f" {size} bytes of code in the ops, {state} (key {lib.key})"
            )
            if args.keep_objects:
                dest = args.keep_objects / target
                shutil.copytree(objects_dir(target), dest, dirs_exist_ok=True)
                print(f"{target}: objects in {dest}")
    except JitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
