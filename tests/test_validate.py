"""`validate`: every stencil alone in the emulator agrees with the reference,
and a planted patching mistake is caught."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jit import patch
from jit.build import load_library
from jit.ir import BY_NAME, OPS
from jit.paths import ROOT
from jit.validate import format_report, validate


@pytest.mark.parametrize("stitcher", ["c", "python"])
@pytest.mark.parametrize("target", ["x86_64-linux", "aarch64-linux"])
def test_every_op_passes(target, stitcher):
    report = validate(target, list(OPS), 40 if stitcher == "c" else 10, seed=1, stitcher=stitcher)
    assert report.ok, format_report(report, load_library(target))
    assert set(report.results) == {op.mnemonic for op in OPS}
    assert all(passed == total for passed, total in report.results.values())


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
    from jit.cstitch import plans_for, reloc_numbers

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
    assert "1 of 1 ops pass on aarch64-linux" in out.stdout and "1 of 1 ops pass on x86_64-linux" in out.stdout
    assert "  fdiv                  25       25  pass" in out.stdout
