"""The C stitcher gives the same bytes as the Python reference, everywhere."""

from __future__ import annotations

import pytest

from jit.codegen.cstitch import plans_for, stitch_bytes
from jit.codegen.step import Step
from jit.codegen.stitch import StitchError, layout, stitch
from jit.codegen.trace import LOOP, form_trace, program_steps
from jit.lang.uop import parse_file
from jit.paths import ROOT

HELPERS = {
    "_JIT_HELPER_print_int": 0x7F00_0000_1000,
    "_JIT_HELPER_print_float": 0x10_0000_2000,  # near the code: no trampoline
    "_JIT_HELPER_print_byte": 0x7F00_0000_3000,
    "_JIT_HELPER_print_str": 0x1000,
}


def c_layout_agrees(lib, steps):
    """jit_layout (C) places everything where jit.codegen.stitch.layout does."""
    reference = layout(lib, steps)
    plans = plans_for(lib)
    in_one_call = plans.plan(steps, stack_cache=False)[1]  # (jit_plan: a compile's copy, choice and layout)
    for lay in (plans.layout(plans.pack(steps)), in_one_call):
        assert list(lay.code_offsets) == list(reference.code_offsets)
        assert list(lay.data_offsets) == list(reference.data_offsets)
        assert (lay.trampolines, lay.trampoline_slots, lay.size) == (
            reference.trampolines,
            reference.trampoline_slots,
            reference.size,
        )
    return reference


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "bench" / "programs").glob("*.uop")))
def test_same_bytes_for_every_program_on_both_targets(libraries, name):
    steps = program_steps(parse_file(ROOT / "bench" / "programs" / f"{name}.uop"))
    for target, lib in libraries.items():
        lay = c_layout_agrees(lib, steps)
        for base in (0x10_0000_0000, 0x7F12_3456_7000):
            reference = stitch(lib, steps, lay, base, HELPERS)
            assert stitch_bytes(lib, steps, lay, base, HELPERS) == (reference.code, reference.trampolines), target


def test_same_bytes_for_a_trace_with_exits_links_and_inlined_calls(libraries):
    program = parse_file(ROOT / "bench" / "programs" / "spectralnorm.uop")
    # The column loop of `times`, with its call of eval_A inlined.
    pcs = list(range(program.functions[2].start, program.functions[2].end))[:40]
    shape = form_trace(program, pcs, pcs[0], LOOP, 7)
    steps = [*shape.steps, Step("JUMP", target_address=0x7F00_0000_8000)]
    for lib in libraries.values():
        lay = c_layout_agrees(lib, steps)
        assert lay.trampoline_slots >= 1  # the link to another trace
        reference = stitch(lib, steps, lay, 0x5000_0000, HELPERS)
        assert stitch_bytes(lib, steps, lay, 0x5000_0000, HELPERS) == (reference.code, reference.trampolines)


def test_same_errors(libraries):
    lib = libraries["aarch64-linux"]
    steps = [Step("PUSH_INT", 0), Step("JZ", target=300_002)] + [Step("DROP")] * 300_000 + [Step("HALT")]
    lay = c_layout_agrees(lib, steps)
    assert lay.trampoline_slots == 1  # beyond the reach of JZ's short branch: a slot for it
    with pytest.raises(StitchError, match="step 1"):
        stitch(lib, steps, lay, 0x40_0000_0000, {})
    with pytest.raises(StitchError, match=r"step 1: relocation .* out of range"):
        stitch_bytes(lib, steps, lay, 0x40_0000_0000, {})
