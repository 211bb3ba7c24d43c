"""The C anchors print exactly what the bundled programs print."""

from __future__ import annotations

import pytest

from jit.lang.uop import parse_file
from jit.runtime.engines import ENGINES
from jit.tools.anchors import LEVELS, anchor_names, prepare_anchor
from jit.tools.benchmark import SIZES

from .test_programs import KNOWN, PROGRAMS, check


def test_every_bundled_program_has_an_anchor():
    assert anchor_names() == sorted(p.stem for p in PROGRAMS.glob("*.uop"))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("name", "arg", "expected"), KNOWN, ids=[k[0] for k in KNOWN])
def test_anchor_prints_the_known_output(name, arg, expected, level):
    program = parse_file(PROGRAMS / f"{name}.uop")
    run = prepare_anchor(program, [arg], level)
    check(run().output, expected)
    assert run.seconds > 0


@pytest.mark.parametrize("name", sorted(SIZES))
def test_anchors_agree_with_copy_and_patch_at_bench_sizes(name):
    program = parse_file(PROGRAMS / f"{name}.uop")
    expected = ENGINES["jit-eager"](program, [SIZES[name]]).output
    for level in LEVELS:
        assert prepare_anchor(program, [SIZES[name]], level)().output == expected, level
