"""The accumulator machine's front end and reference semantics (docs/opsets.md).

A program is one instruction a line: `set N`, `add N`, `mul N`, `xor N`,
`mix N` (the helper mix(acc, N), helpers.c), `loop LABEL` (count down; jump
back while not zero), `halt`, `LABEL:`, and `count N` once, before the
code: the loop counter's start.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jit.codegen.step import Step
from jit.errors import Diagnostic, ProgramError
from jit.opsets import parse_table
from jit.opsets.model import Outcome

HERE = Path(__file__).resolve().parent
OPS = {row.columns[0]: row.name for row in parse_table((HERE / "ops.def").read_text(), "ops.def")}
MASK = (1 << 64) - 1
STATE_SIZE = 3 * 8  # acc, count, halted (state.h)


@dataclass(frozen=True)
class Program:
    path: str
    code: tuple[tuple[str, int, int], ...]  # (op, operand, line)
    count: int = 1


def parse(path: Path) -> Program:
    return parse_text(Path(path).read_text(), str(path))


def parse_text(text: str, path: str) -> Program:
    raw: list[tuple[str, str, int]] = []
    labels: dict[str, int] = {}
    count = 1
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.endswith(":"):
            labels[line[:-1]] = len(raw)
            continue
        word, _, arg = line.partition(" ")
        if word == "count":
            count = int(arg, 0)
        elif word in OPS:
            raw.append((OPS[word], arg.strip(), lineno))
        else:
            raise ProgramError([Diagnostic(path, lineno, 1, f"unknown instruction {word!r}")])
    code = []
    for op, arg, lineno in raw:
        if op == "LOOP":
            if arg not in labels:
                raise ProgramError([Diagnostic(path, lineno, 1, f"no label {arg!r}")])
            code.append((op, labels[arg], lineno))
        else:
            code.append((op, int(arg, 0) & MASK if arg else 0, lineno))
    if not code or code[-1][0] != "HALT":
        raise ProgramError([Diagnostic(path, 1, 1, "a program ends with halt")])
    return Program(path, tuple(code), count)


def steps(program: Program) -> list[Step]:
    return [
        Step(op, operand0=arg if op != "LOOP" else 0, position=k, target=arg if op == "LOOP" else None)
        for k, (op, arg, _) in enumerate(program.code)
    ]


def buffers(program: Program) -> dict[str, bytes]:
    return {}


def make_state(program: Program, addresses: Mapping[str, int]) -> bytes:
    return struct.pack("<3Q", 0, program.count, 0)


def outcome(program: Program, state: bytes, contents: Mapping[str, bytes], addresses: Mapping[str, int]) -> Outcome:
    acc, count, halted = struct.unpack("<3Q", state)
    return Outcome(acc, None if halted else "did not halt", (count,))


def interpret(program: Program) -> Outcome:
    acc, count, pc = 0, program.count, 0
    while True:
        op, arg, _ = program.code[pc]
        pc += 1
        if op == "SET":
            acc = arg
        elif op == "ADD":
            acc = (acc + arg) & MASK
        elif op == "MUL":
            acc = (acc * arg) & MASK
        elif op == "XOR":
            acc ^= arg
        elif op == "MIX":
            acc = (_fold(acc ^ arg) + _fold(arg)) & MASK
        elif op == "LOOP":
            count = (count - 1) & MASK
            if count:
                pc = arg
        elif op == "HALT":
            return Outcome(acc, None, (count,))


def _fold(x: int) -> int:
    x ^= x >> 31
    x = (x * 0x9E3779B97F4A7C15) & MASK
    return x ^ (x >> 29)


def check(program: Program, outcome: Outcome) -> str | None:
    return None


def format(outcome: Outcome) -> str:
    return str(outcome.value)


def cases(op: str, rng: random.Random) -> list[Program]:
    """`op` with random operands, around a loop that runs it several times."""
    mnemonic = next(m for m, name in OPS.items() if name == op)
    out = []
    for n in range(4):
        arg = rng.getrandbits(64) if n else 0
        body = f"{mnemonic} {arg}\n" if op not in ("LOOP", "HALT") else ""
        text = f"count {n + 2}\nset {rng.getrandbits(64)}\nagain:\n{body}add 3\nloop again\nhalt\n"
        out.append(parse_text(text, f"<{op} case {n}>"))
    return out
