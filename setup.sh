#!/usr/bin/env bash
# Set everything up on a Debian machine, then run one job:
#   bash setup.sh bench   the main job (see README)
#   bash setup.sh test    the test suite
# Installs what is missing: clang-19/lld-19/llvm-19 from Debian (as root),
# a virtualenv in .venv with the package and its dev extra, the stencils.
set -euo pipefail
cd "$(dirname "$0")"
job="${1:-test}"
shift || true

need_apt=()
command -v clang-19 >/dev/null 2>&1 || [ -n "${CLANG:-}" ] || need_apt+=(clang-19)
command -v ld.lld-19 >/dev/null 2>&1 || need_apt+=(lld-19)
command -v llvm-objdump-19 >/dev/null 2>&1 || need_apt+=(llvm-19)
if [ "$job" = test ]; then
    # The debugger, profiler and explorer tests drive the real tools
    # (tests/test_debuggers.py, tests/test_explore.py).
    command -v gdb >/dev/null 2>&1 || need_apt+=(gdb)
    command -v perf >/dev/null 2>&1 || need_apt+=(linux-perf)
    command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # the explorer is checked in a real browser
fi
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    need_apt+=(python3 python3-venv python3-pip)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing ${need_apt[*]} from Debian's packages" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    else
        echo "setup: missing ${need_apt[*]}; run this as root, or: sudo apt-get install ${need_apt[*]}" >&2
        echo "setup: (a clang 19 or newer elsewhere can be named with CLANG=/path/to/clang)" >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
# Bytecode now, as pip does for a normal install: start-up reads it even where
# PYTHONDONTWRITEBYTECODE keeps Python from writing it.
.venv/bin/python -m compileall -q jit
.venv/bin/python build_stencils.py

case "$job" in
    test)
        exec .venv/bin/python -m pytest -q --durations=10 "$@"
        ;;
    bench)
        exec .venv/bin/python -m jit bench --json build/bench.json --plot build/bench.png "$@"
        ;;
    *)
        echo "usage: bash setup.sh bench|test [args...]" >&2
        exit 2
        ;;
esac
