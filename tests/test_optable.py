"""The op table is the single source: the C bodies and the Python side must agree with it."""

from __future__ import annotations

import re

import pytest

from jit.codegen.passes import REGISTER_OPS
from jit.lang.optable import FLAGS, OPERAND_KINDS, helper_names, optable, parse_optable
from jit.paths import STENCILS_DIR
from jit.vmdef import constant


def test_table_is_complete_and_unique():
    ops = optable()
    assert len({op.name for op in ops}) == len(ops)
    assert len({op.mnemonic for op in ops}) == len(ops)
    assert [op.opcode for op in ops] == list(range(len(ops)))
    # The bundled micro-op set, by family.
    wanted = {
        "push_int", "push_float", "load", "store", "dup", "swap", "drop",
        "add", "sub", "mul", "div", "mod", "neg", "and", "or", "xor", "shl", "shr",
        "eq", "ne", "lt", "le", "gt", "ge",
        "fadd", "fsub", "fmul", "fdiv", "fneg", "fsqrt", "feq", "fne", "flt", "fle", "fgt", "fge",
        "itof", "ftoi", "mload", "mstore", "jump", "jz", "jnz", "call", "ret", "halt", "arg",
        "print_int", "print_float", "print_byte", "print_str", "guard_zero", "guard_nonzero", "exit",
    }  # fmt: skip
    assert wanted <= {op.mnemonic for op in ops}


def test_every_op_has_exactly_one_body():
    text = (STENCILS_DIR / "bodies.h").read_text()
    direct = re.findall(r"^BODY\((\w+)\)", text, re.M)
    generated = re.findall(r"^(?:BINARY_INT|COMPARE_INT|BINARY_FLOAT|COMPARE_FLOAT)\((\w+),", text, re.M)
    on_locals = [f"{name}{form}" for name in re.findall(r"^FLOAT_LOCALS\((\w+),", text, re.M) for form in ("_LL", "_L")]
    branching = [f"{form}{c}" for c in re.findall(r"^COMPARE_BRANCH\((\w+),", text, re.M) for form in ("J", "GUARD_")]
    numbers = re.findall(r"^REGISTER_LOCAL\((\d+)\)", text, re.M)
    registers = [f"{form}_R{j}" for j in numbers for form in _REGISTER_FORMS]
    bodies = direct + generated + on_locals + branching + registers
    assert sorted(bodies) == sorted(op.name for op in optable())
    assert len(registers) == len(_REGISTER_FORMS) * constant(
        "LOCAL_REGS"
    )  # (one set of register ops per register vm.h has)


_REGISTER_FORMS = ("LOAD", "STORE", "FILL", "SPILL", "INC")


def test_helpers_are_listed_once():
    names = helper_names()
    assert names == ("print_int", "print_float", "print_byte", "print_str")
    header = (STENCILS_DIR / "helpers.h").read_text()
    for name in names:
        assert re.search(rf"^int64_t {name}\(VMState \*state", header, re.M)


def test_flags_and_operands_are_known():
    for op in optable():
        assert op.operand in OPERAND_KINDS and op.flags <= FLAGS
        if op.has("BRANCH"):  # (on a 0/1, or fused with the comparison that makes it: on two values)
            assert op.operand == "LABEL" and op.pops == (2 if op.has("FUSED") else 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("OP(ADD, add, 2, 1, NONE)", "malformed op table entry"),
        ("OP(ADD, add, 2, 1, WIDGET, 0)", "unknown operand kind WIDGET"),
        ("OP(ADD, add, 2, 1, NONE, FAST|JUMP)", "unknown flags ['FAST']"),
    ],
)
def test_malformed_table_entries_name_file_and_line(line, message):
    with pytest.raises(ValueError, match=re.escape(f"ops.def:2: {message}")):
        parse_optable(f"/* header */\n{line}\n")


def test_every_op_a_program_can_hold_has_reference_semantics():
    """The oracle's table covers every op that is not TRACE_ONLY; trace-only
    ops are what a superinstruction expands to, or are checked by validate."""
    from jit.codegen.fuse import expand
    from jit.lang.interp import SEMANTICS

    for op in optable():
        if op.has("TRACE_ONLY"):
            assert op.mnemonic not in SEMANTICS
            if op.has("FUSED"):  # (a local in a register has none: validate checks those against its own)
                parts = [m for m, _ in expand(op.name, 1, 2) if m not in REGISTER_OPS]
                assert all(m.lower() in SEMANTICS for m in parts), op.name
        else:
            assert op.mnemonic in SEMANTICS, f"{op.mnemonic} has no builder in jit.lang.interp.SEMANTICS"
    assert set(SEMANTICS) <= {op.mnemonic for op in optable()}
