"""eBPF (RFC 9669) as an op set: the module jit.opsets loads (docs/opsets.md).

The parts live beside it: isa (state layout, op table, programs, decoding
into steps), data_format and bpf_object (the two front ends), state (the
engines' buffers and outcomes), reference (the Python semantics), cases
(validate's programs).  This module is the contract jit.opsets calls.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from jit.errors import Diagnostic, ProgramError
from jit.opsets.model import Outcome

from .bench import benchmark
from .bpf_object import parse_elf
from .cases import access_size, cases
from .data_format import parse_data
from .isa import BY_NAME, BY_OPCODE, CONST, FORMS, STATE_SIZE, Program, Slot, decode, signed, steps
from .reference import interpret
from .state import buffers, make_state, outcome

__all__ = [
    "BY_NAME",
    "BY_OPCODE",
    "CONST",
    "FORMS",
    "STATE_SIZE",
    "Program",
    "Slot",
    "access_size",
    "benchmark",
    "buffers",
    "cases",
    "check",
    "decode",
    "format",
    "interpret",
    "make_state",
    "outcome",
    "parse",
    "parse_data",
    "parse_elf",
    "signed",
    "steps",
    "with_input",
]  # fmt: skip


def parse(path: Path) -> Program:
    try:
        blob = Path(path).read_bytes()
    except OSError as e:
        raise ProgramError([Diagnostic(str(path), 1, 1, f"cannot read: {e.strerror}")]) from None
    if blob[:4] == b"\x7fELF":
        return parse_elf(blob, str(path))
    try:
        text = blob.decode()
    except UnicodeDecodeError:
        raise ProgramError([Diagnostic(str(path), 1, 1, "neither an ELF object nor a text .data file")]) from None
    return parse_data(text, str(path))


def with_input(program: Program, mem: bytes) -> Program:
    """The program with another input buffer (the command line's --input)."""
    return replace(program, mem=mem)


def format(outcome: Outcome) -> str:  # (the op set contract's name)
    return f"{outcome.value:#x}" if outcome.value is not None else f"error: {outcome.error}"


def check(program: Program, outcome: Outcome) -> str | None:
    if program.expects_error and outcome.error is None:
        return f"{program.path}: expected a runtime error (-- error), but r0 = {outcome.value:#x}"
    expected = None if program.expects_error or outcome.error is not None else program.result
    if expected is not None and outcome.value != expected:
        return f"{program.path}: r0 = {outcome.value:#x}, but -- result expects {program.result:#x}"
    return None
