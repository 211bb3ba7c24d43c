"""Bad input, each case in its own process so that a crash would show: every
one ends with its documented exit status and a clear message, never a
signal or a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jit.build.library import Variant, build_library, library_path
from jit.paths import ROOT, cache_dir

GOOD = ".func main\n push_int 7\n print_int\n halt\n"

# name: (program bytes, args, exit status, what stderr says)
CASES: dict[str, tuple[bytes, list[str], int, str]] = {
    "empty": (b"", [], 2, ":1:1: no functions"),
    "binary": (bytes(range(256)) * 3, [], 2, "not UTF-8 text"),
    "nul": (b".func main\n\0halt\n", [], 2, "NUL byte"),
    "truncated_string": (b'.func main\n print_str "hello', [], 2, "unterminated string literal"),
    "truncated_function": (b".func main\n push_int 1\n print_int\n", [], 2, "control falls off the end"),
    "unknown_op": (b".func main\n launch\n halt\n", [], 2, "unknown op 'launch'"),
    "float_for_int": (b".func main\n push_int 1.5\n print_int\n halt\n", [], 2, "expected an integer"),
    "name_for_local": (b".func main\n load x\n halt\n", [], 2, "expected an integer, got 'x'"),
    "number_for_label": (b".func main\n jump 3\n", [], 2, "expected a label name"),
    "huge_literal": (b".func main\n push_int 99999999999999999999999999\n halt\n", [], 2, "out of range"),
    "huge_float": (b".func main\n push_float 1e99999\n halt\n", [], 2, "float literal 1e99999 out of range"),
    "undefined_label": (b".func main\n jump nowhere\n", [], 2, "undefined label 'nowhere'"),
    "duplicate_label": (b".func main\nx:\nx:\n halt\n", [], 2, "label 'x' is defined twice"),
    "stack_underflow": (b".func main\n add\n halt\n", [], 2, "stack underflow"),
    "absurd_memory": (b".memory 99999999999\n" + GOOD.encode(), [], 2, "memory size 99999999999 is out of range"),
    "division_by_zero": (
        b".func main\n push_int 1\n push_int 0\n div\n halt\n",
        [],
        1,
        ":4: div: integer division by zero",
    ),
    "memory_out_of_range": (
        b".memory 2\n.func main\n push_int 2\n mload\n halt\n",
        [],
        1,
        "memory index 2 out of range",
    ),
    "runaway_recursion": (b".func main\n call f\n halt\n.func f\n call f\n ret\n", [], 1, "call depth exceeds"),
    "stack_overflow": (b".func main\n call f\n halt\n.func f locals=65000\n call f\n ret\n", [], 1, "stack overflow"),
    "missing_argument": (b".args 1\n" + GOOD.encode(), [], 2, "expects 1 integer argument(s), got 0"),
    "bad_argument": (b".args 1\n" + GOOD.encode(), ["seven"], 2, "argument 'seven' is not an integer"),
}
ENGINES = [["--engine", "jit"], ["--engine", "jit", "--eager"], ["--engine", "switch"], ["--target", "aarch64-linux"]]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jit", *args], cwd=ROOT, capture_output=True, text=True, check=False,
        env=env, timeout=300,
    )  # fmt: skip


def assert_clean(out: subprocess.CompletedProcess, status: int, says: str) -> None:
    assert out.returncode == status, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], out.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_program(tmp_path, name):
    source, args, status, says = CASES[name]
    path = tmp_path / f"{name}.uop"
    path.write_bytes(source)
    for engine in ENGINES if status == 1 else ENGINES[:1]:
        assert_clean(run("run", str(path), *args, *engine), status, says)


def test_missing_and_unreadable_programs(tmp_path):
    assert_clean(run("run", str(tmp_path / "nope.uop")), 2, "cannot read")
    assert_clean(run("run", str(tmp_path)), 2, "cannot read")


def test_random_bytes_never_crash(tmp_path):
    rng = __import__("random").Random(7)
    for k in range(20):
        path = tmp_path / f"r{k}.uop"
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))))
        out = run("run", str(path))
        assert out.returncode == 2 and "Traceback" not in out.stderr


def copy_cache(tmp_path: Path) -> dict:
    """A private copy of the build cache, to damage."""
    dest = tmp_path / "cache"
    shutil.copytree(cache_dir(), dest)
    return dict(os.environ, JIT_CACHE_DIR=str(dest))


def test_corrupt_stale_and_foreign_stencil_caches_are_rebuilt(tmp_path, monkeypatch):
    """A damaged cache file is rebuilt from the sources, to the same library.
    (A small op set proves it: loading is the same code for any library.)"""
    monkeypatch.setenv("JIT_CACHE_DIR", str(tmp_path / "cache"))
    small = Variant(ops=("PUSH_INT", "ADD", "PRINT_INT", "HALT"))
    x86, a64 = (build_library(t, variant=small, progress=lambda _: None)[0] for t in ("x86_64-linux", "aarch64-linux"))
    path, other = library_path("x86_64-linux", small), library_path("aarch64-linux", small)
    good = path.read_bytes()
    for damage in (
        lambda: path.write_text("{ not json"),  # corrupt
        lambda: path.write_text(good.decode().replace('"key": "', '"key": "stale')),  # stale
        lambda: shutil.copy(other, path),  # another target's library
        lambda: path.write_bytes(b"\0" * 10),  # binary garbage
    ):
        damage()
        lib, rebuilt = build_library("x86_64-linux", variant=small, progress=lambda _: None)
        assert rebuilt and lib.target == "x86_64-linux" and lib.key == x86.key != a64.key
        assert path.read_bytes() == good


def test_damaged_host_library_is_rebuilt(tmp_path):
    program = tmp_path / "good.uop"
    program.write_text(GOOD)
    env = copy_cache(tmp_path)
    for lib in (Path(env["JIT_CACHE_DIR"]) / "hostlib").rglob("*.so"):
        lib.write_bytes(b"not an ELF file")
    out = run("run", str(program), "--engine", "switch", env=env)
    assert (out.returncode, out.stdout) == (0, "7"), out.stderr


def test_no_clang_is_a_clean_error_when_the_cache_is_cold(tmp_path):
    program = tmp_path / "good.uop"
    program.write_text(GOOD)
    env = dict(os.environ, JIT_CACHE_DIR=str(tmp_path / "empty"), CLANG=str(tmp_path / "no-clang"))
    out = run("run", str(program), env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: CLANG=") and "apt-get install clang-19" in out.stderr


LOOP = (
    ".args 1\n.func main locals=1\n arg 0\n store 0\n"
    "l:\n load 0\n jz d\n load 0\n push_int 1\n sub\n store 0\n jump l\n"
    "d:\n push_int 7\n print_int\n halt\n"
)


def test_every_option_combination_ends_in_a_result_or_a_usage_error(tmp_path, capsys, monkeypatch):
    """Walk the run command's option matrix in-process: each combination
    either runs (exit 0, the right output) or is refused in one line (exit
    2); nothing raises, nothing is silently ignored."""
    import itertools

    from jit.tools.cli import main

    monkeypatch.chdir(tmp_path)  # (--perf-map writes to /tmp; the program sits here)
    program = tmp_path / "loop.uop"
    program.write_text(LOOP)
    engines = [["--engine", e] for e in ("py", "switch", "tailcall", "jit")]
    modes = [[], ["--eager"]]
    backends = [[], ["--backend", "llvm-O2"]]
    targets = [[], ["--target", "aarch64-linux"], ["--emulate"]]
    extras = [[], ["--stats"], ["--dump-traces"], ["--hot-loop", "2"], ["--perf-map"], ["--perf-jitdump"], ["--gdb"]]
    outcomes = {0: 0, 2: 0}
    for parts in itertools.product(engines, modes, backends, targets, extras):
        argv = ["run", str(program), "40", *itertools.chain.from_iterable(parts)]
        status = main(argv)
        out, err = capsys.readouterr()
        assert status in (0, 2), (argv, err)
        outcomes[status] += 1
        if status == 0:
            assert out == "7", (argv, out, err)
        else:
            assert out == "" and err.startswith("error: ") and err.count("\n") == 1, (argv, err)
        assert "Traceback" not in err
    assert outcomes[0] >= 30 and outcomes[2] >= 100  # both kinds are really exercised
