"""Differential fuzzing: random valid programs, every engine, exactly the same result.

    pytest -m fuzz --fuzz-examples 10000

Every engine (py, switch, tailcall, the JIT eager and tiered with each
backend, tiered with every threshold at 1, AArch64 and x86-64 under
emulation) must agree on stdout, status and error message.  Hypothesis
shrinks a disagreement; the smallest program found is written to
tests/fuzz_regressions/new_failure.uop (with its arguments), to be renamed
and kept: every file there is replayed by test_fuzz_regressions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jit.lang.ir import INT64_MAX, INT64_MIN
from jit.lang.uop import format_program, parse_file
from jit.tools.fuzzgen import build, programs

from .runners import run_all

REGRESSIONS = Path(__file__).parent / "fuzz_regressions"
ints = st.one_of(st.sampled_from([0, 1, -1, 5, INT64_MIN, INT64_MAX]), st.integers(INT64_MIN, INT64_MAX))


def check_agreement(program, args) -> None:
    outcomes = run_all(program, args)
    reference = outcomes["py"]
    wrong = {name: o for name, o in outcomes.items() if o != reference}
    if wrong:
        REGRESSIONS.mkdir(exist_ok=True)
        text = f"# args: {' '.join(map(str, args))}\n" + format_program(program)
        (REGRESSIONS / "new_failure.uop").write_text(text)
        details = "\n".join(f"  {name}: {o}" for name, o in wrong.items())
        raise AssertionError(f"engines disagree with py ({reference}):\n{details}")


@pytest.mark.fuzz
def test_engines_agree_on_random_programs(request):
    examples = request.config.getoption("--fuzz-examples")

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        database=None,
    )
    @given(programs, st.tuples(ints, ints))
    def run(drawn, args):
        check_agreement(build(drawn), list(args))

    run()


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.uop")), ids=lambda p: p.stem)
def test_fuzz_regressions(path):
    first = path.read_text().splitlines()[0]
    args = [int(v) for v in first.removeprefix("# args:").split()] if first.startswith("# args:") else []
    check_agreement(parse_file(path), args)


def test_the_generator_covers_what_it_should():
    """Draws enough programs to see loops, calls, floats, memory and runtime errors."""
    seen: set[str] = set()
    statuses: set[str] = set()

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(programs)
    def look(drawn):
        program = build(drawn)
        text = format_program(program)
        seen.update(op for op in ("call", "mload", "mstore", "fsqrt", "jnz", "jz", "print_float", "div") if op in text)
        seen.update(["through the base"] if "load 6" in text else [])  # (memory at local 6 plus a constant)
        from jit.lang.interp import run_py

        statuses.add(run_py(program, [3, 4]).status)

    look()
    assert {"call", "mload", "mstore", "jz", "print_float", "div", "through the base"} <= seen
    assert statuses == {"halted", "error"}
