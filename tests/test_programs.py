"""The bundled programs print their known outputs on every engine."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from jit.lang.uop import parse_file
from jit.paths import ROOT
from jit.runtime.engines import ENGINES

PROGRAMS = ROOT / "bench" / "programs"


def branchy_reference(n: int) -> int:
    """branchy.uop, written plainly in Python."""
    acc = 0
    for i in range(n):
        acc += i % 7 if i < n // 2 else -(i % 5)
        if i % 3 == 0:
            acc ^= 3
    return acc


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def primes_below(n: int) -> int:
    return sum(1 for k in range(2, n) if all(k % d for d in range(2, int(k**0.5) + 1)))


# Outputs from the Computer Language Benchmarks Game (nbody, fannkuch,
# spectralnorm, mandelbrot), or computed here independently.
KNOWN = [
    ("nbody", 1000, b"-0.169075164\n-0.169087605\n"),
    ("fannkuch", 7, b"228\nPfannkuchen(7) = 16\n"),
    ("spectralnorm", 100, b"1.274219991\n"),
    ("mandelbrot", 200, ("cc65e64bd553ed18896de1dfe7fae3e5", 5011)),
    ("sieve", 20000, b"%d\n" % primes_below(20000)),
    ("fib", 20, b"%d\n" % fib(20)),
    ("branchy", 30001, b"%d\n" % branchy_reference(30001)),
    ("count", 100000, b"100000\n"),
]


def check(output: bytes, expected) -> None:
    if isinstance(expected, tuple):
        md5, size = expected
        assert len(output) == size
        assert hashlib.md5(output).hexdigest() == md5
    else:
        assert output == expected


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize(("name", "arg", "expected"), KNOWN, ids=[k[0] for k in KNOWN])
def test_known_output(engine, name, arg, expected):
    program = parse_file(PROGRAMS / f"{name}.uop")
    outcome = ENGINES[engine](program, [arg])
    assert outcome.status == "halted", outcome.error
    check(outcome.output, expected)


@pytest.mark.parametrize("engine", ["switch", "tailcall"])
def test_larger_runs_on_the_c_engines(engine):
    """Sizes the Python oracle is too slow for, checked against known values."""
    run = ENGINES[engine]
    assert run(parse_file(PROGRAMS / "sieve.uop"), [1000000]).output == b"78498\n"
    assert run(parse_file(PROGRAMS / "fib.uop"), [27]).output == b"%d\n" % fib(27)
    n = 2_000_001
    assert run(parse_file(PROGRAMS / "branchy.uop"), [n]).output == b"%d\n" % branchy_reference(n)


def test_every_bundled_program_is_covered():
    assert {p.stem for p in Path(PROGRAMS).glob("*.uop")} == {k[0] for k in KNOWN}
