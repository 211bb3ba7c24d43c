"""`validate`: every stencil alone in the emulator agrees with the reference,
and a planted patching mistake is caught."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from jit.build.library import SWITCHED_OFF, load_library
from jit.codegen import patch, stackcache
from jit.codegen.stackcache import stencil_name
from jit.lang.ir import BY_NAME, OPS
from jit.paths import ROOT
from jit.tools.validate import format_report, validate


@pytest.mark.parametrize("stitcher", ["c", "python"])
@pytest.mark.parametrize("target", ["x86_64-linux", "aarch64-linux"])
def test_every_op_passes(target, stitcher):
    report = validate(target, list(OPS), 40 if stitcher == "c" else 10, seed=1, stitcher=stitcher)
    assert report.ok, format_report(report, load_library(target))
    variants = {stencil_name(op.name, i, o).lower() for op in OPS for i, o in stackcache.variants(op) if i or o}
    assert set(report.results) == {op.mnemonic for op in OPS} | variants
    assert len(variants) > 100
    assert all(passed == total for passed, total in report.results.values())


# Ops with cold paths, calls and locals: what the build switches change.  PUSH_INT, PUSH_FLOAT
# (for the float registers) and HALT frame every sample.
SWITCH_OPS = ("MLOAD", "DIV", "CALL", "RET", "LOAD", "PUSH_INT", "PUSH_FLOAT", "HALT")


@pytest.mark.parametrize("off", sorted(SWITCHED_OFF))
def test_the_library_with_a_technique_switched_off_passes(off):
    """validate --off: the stencils as bench --ablation builds them without
    one technique (here a few ops of each, on both targets)."""
    variant = replace(SWITCHED_OFF[off], ops=SWITCH_OPS)
    chosen = [op for op in OPS if op.name in SWITCH_OPS]
    names = {op.mnemonic for op in chosen} | {
        stencil_name(op.name, i, o).lower()
        for op in chosen
        for i, o in stackcache.variants(op, variant.stack_depth, variant.float_cache)
        if i or o
    }
    for target in ("x86_64-linux", "aarch64-linux"):
        report = validate(target, chosen, 12, seed=2, variant=variant)
        assert report.ok, format_report(report, load_library(target, variant))
        assert set(report.results) == names


def _planted(monkeypatch, reloc: str, wrong):
    monkeypatch.setitem(patch.PATCHERS, reloc, wrong)


def test_a_wrong_movw_patch_is_caught(monkeypatch):
    """Bits 31:16 of an operand put one bit off: every 64-bit operand goes wrong."""
    right = patch.PATCHERS["R_AARCH64_MOVW_UABS_G1_NC"]
    _planted(monkeypatch, "R_AARCH64_MOVW_UABS_G1_NC", lambda code, off, v, p: right(code, off, v << 1, p))
    report = validate("aarch64-linux", [BY_NAME["PUSH_INT"], BY_NAME["ADD"]], 30, stitcher="python")
    assert not report.ok
    assert report.results["push_int"][0] < 30  # caught
    assert report.results["add"] == (30, 30)  # ADD has no operand: untouched
    text = format_report(report, load_library("aarch64-linux"))
    assert "FAIL push_int on aarch64-linux" in text and "expected:" in text and "actual:" in text
    assert "R_AARCH64_MOVW_UABS_G1_NC _JIT_OPERAND0" in text  # the disassembly, holes named


def test_a_branch_patched_one_instruction_off_is_caught(monkeypatch):
    right = patch.PATCHERS["R_AARCH64_CONDBR19"]
    _planted(monkeypatch, "R_AARCH64_CONDBR19", lambda code, off, v, p: right(code, off, v + 4, p))
    report = validate("aarch64-linux", [BY_NAME["JZ"]], 30, stitcher="python")
    assert report.results["jz"][0] < 30


def test_an_x86_operand_off_by_one_page_is_caught(monkeypatch):
    right = patch.PATCHERS["R_X86_64_64"]
    _planted(monkeypatch, "R_X86_64_64", lambda code, off, v, p: right(code, off, v + 0x1000, p))
    report = validate("x86_64-linux", [BY_NAME["LOAD"], BY_NAME["PUSH_INT"]], 20, stitcher="python")
    assert report.results["push_int"][0] == 0 and report.results["load"][0] < 20


def test_a_wrong_patch_plan_in_the_c_stitcher_is_caught():
    """The C path's plan for push_int patches bits 47:32 where bits 31:16 belong."""
    from jit.codegen.cstitch import plans_for, reloc_numbers

    library = load_library("aarch64-linux")
    plans = plans_for(library)
    plan = plans.plans[plans.index["PUSH_INT"]]
    g1, g2 = reloc_numbers()["R_AARCH64_MOVW_UABS_G1_NC"], reloc_numbers()["R_AARCH64_MOVW_UABS_G2_NC"]
    planted = [k for k in range(plan.nholes) if plan.holes[k].reloc == g1]
    assert planted
    try:
        for k in planted:
            plan.holes[k].reloc = g2
        report = validate("aarch64-linux", [BY_NAME["PUSH_INT"]], 30, stitcher="c")
    finally:
        for k in planted:
            plan.holes[k].reloc = g1
    assert report.results["push_int"][0] < 30
    assert validate("aarch64-linux", [BY_NAME["PUSH_INT"]], 30, stitcher="c").ok  # and mended


def test_validate_command_line():
    out = subprocess.run(
        [sys.executable, "-m", "jit", "validate", "--op", "fdiv", "--samples", "25"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    # fdiv and its variants fdiv_10, fdiv_20, fdiv_01, fdiv_11, fdiv_21, and the 15 with
    # float registers on either side (fdiv_01f ... fdiv_2f1f, fdiv_2fi1f, fdiv_2if1f ...)
    for target in ("aarch64-linux", "x86_64-linux"):
        assert f"21 of 21 stencils pass on {target}" in out.stdout
    assert "  fdiv                  25       25  pass" in out.stdout
    assert "  fdiv_21               25       25  pass" in out.stdout
    assert "  fdiv_2f1f             25       25  pass" in out.stdout


def test_a_stack_caching_variant_with_the_wrong_code_is_caught():
    """add_21 stitched from sub_21's bytes: only that variant fails."""
    from jit.codegen.cstitch import plans_for

    library = load_library("x86_64-linux")
    plans = plans_for(library)
    add, sub = plans.plans[plans.index["ADD_21"]], plans.plans[plans.index["SUB_21"]]
    saved = add.code, add.code_size
    try:
        add.code, add.code_size = sub.code, sub.code_size
        report = validate("x86_64-linux", [BY_NAME["ADD"]], 20, stitcher="c")
    finally:
        add.code, add.code_size = saved
    assert report.results["add_21"][0] < 20
    assert all(report.results[name] == (20, 20) for name in ("add", "add_01", "add_10", "add_11", "add_20"))
    assert "FAIL add_21 on x86_64-linux" in format_report(report, library)
