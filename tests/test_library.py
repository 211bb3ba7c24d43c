"""Every op builds for both targets, into stencils whose holes are all understood."""

from __future__ import annotations

import json

import pytest

from jit.build import relocs
from jit.build.library import Variant, build_library, library_path, load_library
from jit.build.stencils import HELPER_PREFIX, HOLE_SYMBOLS, HoleKind, StencilLibrary
from jit.codegen.stackcache import base_op, count, float_mask, states, stencil_name, variants
from jit.lang.optable import helper_names, optable
from jit.targets import TARGETS, get_target

MACHINE_RELOCS = {
    "x86_64-linux": {r.name for r in relocs.by_number("EM_X86_64").values()},
    "aarch64-linux": {r.name for r in relocs.by_number("EM_AARCH64").values()},
}
# Widths of the field each relocation patches, to check a hole fits its code.
FIELD = {"R_X86_64_64": 8, "R_AARCH64_ABS64": 8}


def test_every_op_has_a_stencil_and_its_stack_caching_variants(library):
    names = [op.name for op in optable()]
    assert list(library.ops)[: len(names)] == names
    for op in optable():
        assert library.ops[op.name].code, op.name
        for cached_in, cached_out in variants(op):
            assert stencil_name(op.name, cached_in, cached_out) in library.ops
    # memory in, memory out is the op itself; the rest are named by their states
    codes = ("0", "1", "2", "1f", "2f", "2fi", "2if")
    assert {n.split("_")[-1] for n in list(library.ops)[len(names) :]} <= {i + o for i in codes for o in codes}
    assert len(library.ops) == len(names) + sum(len(variants(op)) - 1 for op in optable())
    # an op not flagged FLOATS takes its operands from, and makes them in, the integer registers
    by_name = {op.name: op for op in optable()}
    for name in list(library.ops)[len(names) :]:
        op = by_name[base_op(name)]
        if not op.has("FLOATS"):
            cached_in, cached_out = states(name)
            popped = count(cached_in) if op.pops < 0 else min(op.pops, count(cached_in))
            assert not float_mask(cached_in) & ((1 << popped) - 1), name
            made = min(max(op.pushes, 0), count(cached_out))
            assert not float_mask(cached_out) & ((1 << made) - 1), name


def test_cached_variants_use_the_registers_and_skip_memory(library):
    """add with both operands in registers and the sum left in one: nothing
    but the add (x86-64: tos0 in r15, tos1 in rdi; AArch64: x23, x24)."""
    plain, cached = library.ops["ADD"].code, library.ops["ADD_21"].code
    assert len(cached) < len(plain)
    if library.target.startswith("x86_64"):
        assert cached == bytes.fromhex("4901ff")  # add r15, rdi
    else:
        assert len(cached) == 4  # one add
    # popping the top when it is only in a register costs nothing
    assert library.ops["DROP_10"].code == b""


def test_float_variants_keep_floats_in_float_registers(library):
    """fadd with both operands in float registers: nothing but the add, where
    the integer registers' variant moves each operand and the sum between
    register files (x86-64: xmm0, xmm1; AArch64: d0, d1)."""
    floats, ints = library.ops["FADD_2f1f"].code, library.ops["FADD_21"].code
    assert len(floats) == 4  # addsd xmm0, xmm1 / fadd d0, d1, d0
    assert len(ints) > 3 * len(floats)
    if library.target.startswith("x86_64"):
        assert floats == bytes.fromhex("f20f58c1")  # addsd xmm0, xmm1
    # a local loaded straight into a float register, the top moved aside
    assert len(library.ops["LOAD_1f2f"].code) <= len(library.ops["LOAD_12"].code) + 4
    # what the choice weighs: an instruction each, a move between register files three
    assert library.ops["FADD_2f1f"].cost == 1
    assert library.ops["FADD_21"].cost == 3 * 3 + 1
    assert library.ops["LOAD_12"].cost == len(
        list(get_target(library.target).disassembler.disasm_lite(library.ops["LOAD_12"].code, 0))
    )


def test_every_hole_is_understood(library, target):
    for stencil in [library.shim, *library.ops.values()]:
        for hole in stencil.holes + stencil.data_holes:
            assert isinstance(hole.kind, HoleKind)
            assert hole.reloc in MACHINE_RELOCS[target], (stencil.name, hole)
            assert relocs.get(hole.reloc).becomes is None  # GOT references are resolved
            if hole.kind in (HoleKind.CODE, HoleKind.DATA):
                assert hole.symbol == ""
            elif hole.kind is HoleKind.HELPER:
                assert hole.symbol.removeprefix(HELPER_PREFIX) in helper_names()
            else:
                assert HOLE_SYMBOLS[hole.symbol] is hole.kind
        for holes, blob in ((stencil.holes, stencil.code), (stencil.data_holes, stencil.data)):
            for hole in holes:
                assert 0 <= hole.offset <= len(blob) - (FIELD.get(hole.reloc, 4)), (stencil.name, hole)
            offsets = [h.offset for h in holes]
            assert len(offsets) == len(set(offsets)), stencil.name


def test_data_references_stay_inside_the_data(library):
    for stencil in library.ops.values():
        for hole in stencil.holes:
            if hole.kind is HoleKind.DATA:
                # PC-relative x86 forms carry the -4 of the instruction's end.
                assert -8 <= hole.addend < len(stencil.data), (stencil.name, hole)


def test_holes_match_what_each_op_does(library):
    """The holes follow from the op table: jumps have a target, errors a position."""
    for op in optable():
        kinds = {h.kind for h in library.ops[op.name].holes + library.ops[op.name].data_holes}
        if op.has("JUMP") or op.has("CALL"):
            assert HoleKind.TARGET in kinds, op.name
        if op.has("ERROR"):
            assert HoleKind.POSITION in kinds, op.name
        if op.has("HELPER"):
            assert HoleKind.HELPER in kinds, op.name
        if op.name.startswith("GUARD"):
            assert HoleKind.EXIT in kinds, op.name
        if op.operand in ("INT", "FLOAT", "ARG", "PREC", "STRING"):
            assert HoleKind.OPERAND0 in kinds, op.name
        if op.operand == "LOCAL":  # (its byte offset, where it is a displacement: template.c)
            assert kinds & {HoleKind.OPERAND0, HoleKind.OPERAND0_X8}, op.name
        if op.has("TERMINATOR") and not op.has("JUMP"):
            assert HoleKind.CONTINUE not in kinds, op.name


def test_no_stencil_ends_in_a_jump_to_its_continuation(library, target):
    for stencil in library.ops.values():
        last = [h for h in stencil.holes if h.kind is HoleKind.CONTINUE and h.symbol == "_JIT_CONTINUE"]
        width = 4 if target.startswith("aarch64") else 5
        assert all(h.offset + 4 < len(stencil.code) or h.offset < len(stencil.code) - width for h in last)
    # Most straight-line ops lose their final jump; say so in their notes.
    removed = [s for s in library.ops.values() if any("removed" in n for n in s.notes)]
    assert len(removed) >= len(library.ops) // 2


def test_simple_ops_fall_through(library):
    """Branches end in one conditional branch to the target: no jump left over."""
    for name in ("JZ", "JNZ", "GUARD_ZERO", "GUARD_NONZERO"):
        stencil = library.ops[name]
        assert len(stencil.holes) == 1, name
        hole = stencil.holes[0]
        assert hole.kind in (HoleKind.TARGET, HoleKind.EXIT)
        assert stencil.notes, name


def test_library_roundtrips_through_json(library):
    again = StencilLibrary.from_json(json.loads(library.dumps()))
    assert again == library
    assert again.dumps() == library.dumps()


def test_second_build_is_cached():
    for target in TARGETS:
        first, _ = build_library(target)
        again, rebuilt = build_library(target)
        assert not rebuilt
        assert again == first
        assert library_path(target).read_text() == first.dumps()


def test_no_hot_path_ends_in_a_jump_to_the_continuation(library, target):
    """Hot/cold splitting: the only jumps to _JIT_CONTINUE left in any stencil's
    code are conditional ones; every stencil's straight line falls through to
    the next (its cold parts are out of line, in its data)."""
    from jit.targets import get_target

    md = get_target(target).disassembler
    for stencil in library.ops.values():
        for hole in stencil.holes:
            if hole.kind is HoleKind.CONTINUE and hole.symbol == "_JIT_CONTINUE":
                start = next(i for i in md.disasm(stencil.code, 0) if i.address <= hole.offset < i.address + i.size)
                assert start.mnemonic not in ("jmp", "b"), (stencil.name, start.mnemonic, stencil.notes)
    split = [s for s in library.ops.values() if any("cold part" in n for n in s.notes)]
    assert any(s.name.startswith("MLOAD") for s in split) and any(s.name.startswith("DIV") for s in split)


def test_the_stack_machines_stencil_sources_are_what_clang_reads(clang):
    """stencils/opset.toml names the files the stencils are built from (the
    library's cache key); clang's own dependency list of the template and the
    shim must be inside it, or an edit could leave a stale library."""
    import subprocess

    from jit.build.library import flags_for
    from jit.opsets import stack_machine
    from jit.targets import get_target

    stack = stack_machine()
    named = {p.name for p in stack.stencil_sources()}
    for source in (stack.template, stack.shim):
        for target in TARGETS:
            flags = [f for f in flags_for(stack, get_target(target)) if f != "-c"]
            out = subprocess.run(
                [clang.path, *flags, "-MM", source], cwd=stack.root, capture_output=True, text=True, check=True
            )
            read = {p for p in out.stdout.replace("\\\n", " ").split(":", 1)[1].split()}
            assert read and read <= named, (source, target, read - named)


def test_locals_are_32_bit_displacements_on_x86_64():
    """template.c reaches a local at its byte offset, a scalar hole that is
    small data on x86-64 (stencils/opset.toml): one instruction, no movabs.
    Variant(defines=("-DLOCALS_BY_INDEX",)) is the old way, for the ablation."""
    small = Variant(ops=("LOAD", "STORE"))
    by_index = Variant(ops=("LOAD", "STORE"), defines=("-DLOCALS_BY_INDEX",))
    assert by_index.tag.startswith("locals-by-index")
    new, old = (load_library("x86_64-linux", v).ops["LOAD_01"] for v in (small, by_index))
    assert [(h.kind, h.reloc) for h in new.holes] == [(HoleKind.OPERAND0_X8, "R_X86_64_32S")]
    assert [(h.kind, h.reloc) for h in old.holes] == [(HoleKind.OPERAND0, "R_X86_64_64")]
    assert len(new.code) < len(old.code)
    with pytest.raises(ValueError, match="-DNAME"):
        Variant(defines=("LOCALS_BY_INDEX",))
