"""The public API: what a user of the library calls, checked as the command line checks it."""

from __future__ import annotations

import pytest

import jit
from jit.lang.ir import Function, Instr, Program
from jit.lang.optable import optable

from .test_programs import PROGRAMS, fib

FIB = PROGRAMS / "fib.uop"


@pytest.mark.parametrize("engine", jit.ENGINES)
def test_every_engine_gives_the_known_output(engine):
    result = jit.run(jit.load(FIB), [15], engine=engine)
    assert result.ok and result.output == b"%d\n" % fib(15) and result.error == ""
    assert result.seconds > 0
    assert (result.stats is None) == (engine != "jit")


@pytest.mark.parametrize("backend", jit.BACKENDS)
def test_eager_and_tiered_on_every_backend(backend):
    program = jit.load(PROGRAMS / "branchy.uop")
    eager = jit.run(program, [601], eager=True, backend=backend)
    tiered = jit.run(program, [601], backend=backend, config=jit.TierConfig(hot_loop=2, hot_exit=2))
    reference = jit.run(program, [601], engine="py")
    assert eager.output == tiered.output == reference.output
    assert isinstance(eager.stats, jit.EagerStats) and eager.stats.steps > 0
    assert isinstance(tiered.stats, jit.TierStats) and tiered.stats.traces >= 2


def test_linked_exits_are_counted_apart_from_exits_to_tier1():
    program = jit.load(PROGRAMS / "branchy.uop")
    stats = jit.run(program, [20001], config=jit.TierConfig(hot_loop=2, hot_exit=3, accounting=True)).stats
    assert isinstance(stats, jit.TierStats) and stats.linked >= 1
    # Each exit went back to tier 1 until it was hot (3 times) and linked; then straight on.
    assert 3 <= stats.exits_to_tier1 < 100 < stats.exits_linked
    assert "back to tier 1" in stats.report() and "linked exits" in stats.report()


def test_emulated_aarch64_through_the_api():
    result = jit.run(jit.load(FIB), [12], target="aarch64-linux")
    assert result.output == b"%d\n" % fib(12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "expects 1 integer argument(s), got 0"),
        ([1, 2], "expects 1 integer argument(s), got 2"),
        ([2**70], "does not fit in 64 bits"),
        ([-(2**63) - 1], "does not fit in 64 bits"),
        (["7"], "is not an integer"),
        ([7.0], "is not an integer"),
        ([True], "is not an integer"),
        ("7", "a sequence of integers"),
    ],
)
@pytest.mark.parametrize("engine", jit.ENGINES)
def test_arguments_are_checked_before_any_engine_runs(engine, args, message):
    with pytest.raises(jit.JitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        jit.run(jit.load(FIB), args, engine=engine)


def test_too_few_arguments_cannot_make_a_c_engine_read_past_them():
    """The case that read another object's memory: `.args 3`, given one."""
    program = jit.parse(".args 3\n.func main\n arg 2\n print_int\n halt\n", "three.uop")
    for engine in jit.ENGINES:
        with pytest.raises(jit.JitError, match="expects 3 integer argument"):
            jit.run(program, [1], engine=engine)
    assert jit.run(program, [1, 2, 3], engine="switch").output == b"3"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"engine": "switch", "eager": True}, "eager goes with the jit engine"),
        ({"engine": "py", "target": "aarch64-linux"}, "go with the jit engine"),
        ({"engine": "tailcall", "backend": "llvm-O2"}, "goes with the jit engine, natively"),
        ({"target": "aarch64-linux", "backend": "llvm-O0"}, "goes with the jit engine, natively"),
        ({"eager": True, "config": jit.TierConfig()}, "tiered jit engine"),
        ({"engine": "py", "config": jit.TierConfig()}, "tiered jit engine"),
        ({"engine": "nope"}, "unknown engine"),
        ({"backend": "gcc"}, "unknown backend"),
        ({"target": "riscv64-linux"}, "unknown target"),
        ({"backend": "llvm-O2", "config": jit.TierConfig(perf_map=True)}, "perf_map describes native"),
    ],
)
def test_options_that_do_not_apply_are_errors(options, message):
    with pytest.raises(jit.JitError, match=message):
        jit.run(jit.load(FIB), [5], **options)


def test_parse_errors_carry_every_problem():
    with pytest.raises(jit.ProgramError) as info:
        jit.parse(".func main\n push_int\n bogus 3\n jump nowhere\n", "bad.uop")
    problems = [str(d) for d in info.value.diagnostics]
    assert len(problems) >= 3 and all(p.startswith("bad.uop:") for p in problems)


def test_a_hand_built_program_is_verified_before_it_runs():
    """A Program made without the builder is held to the verifier's rules: a
    local out of range would otherwise be read past the frame by C code."""
    ops = {op.name: op for op in optable()}
    main = Function("main", 0, 1, 0, 0, 3)
    code = (Instr(ops["LOAD"].opcode, 5, 0, 1, 1), Instr(ops["PRINT_INT"].opcode, 0, 0, 2, 1),
            Instr(ops["HALT"].opcode, 0, 0, 3, 1))  # fmt: skip
    program = Program("hand.uop", code, (main,))
    with pytest.raises(jit.ProgramError, match="local"):
        jit.run(program, [], engine="switch")


def test_runtime_errors_are_results_not_exceptions():
    program = jit.parse(".func main\n push_int 1\n push_int 0\n div\n halt\n", "div.uop")
    for engine in jit.ENGINES:
        result = jit.run(program, engine=engine)
        assert result.status == "error" and not result.ok
        assert result.error == "div.uop:4: div: integer division by zero"


def test_library_and_validate():
    lib = jit.library("aarch64-linux")
    assert lib.target == "aarch64-linux" and "ADD" in lib.ops
    report = jit.validate("x86_64-linux", ["add", "MLOAD"], samples=5)
    assert report.ok and set(report.results) >= {"add", "mload"}
    with pytest.raises(jit.JitError, match="unknown op"):
        jit.validate(ops=["frobnicate"])


def test_the_public_names_are_exported():
    assert set(jit.__all__) >= {"load", "parse", "run", "Result", "TierConfig", "JitError", "ProgramError"}
    for name in jit.__all__:
        assert getattr(jit, name) is not None
