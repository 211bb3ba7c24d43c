"""Small programs that exercise one op each, for jit.opsets.validate: from
random registers, both ways for a jump, in and out of bounds for memory,
every call kind, map programs and loops."""

from __future__ import annotations

import random
import re

from .data_format import parse_data
from .isa import BY_NAME, LDDW, MASK, Program, Slot, signed

_SPECIAL = (0, 1, -1, 2, 7, 8, 31, 32, 63, 64, 0x7FFFFFFF, -0x80000000, 0x8000, 0xFF)
_SPECIAL64 = (0, 1, MASK, 1 << 63, (1 << 63) - 1, 0xFFFFFFFF, 0x80000000, 0x1_0000_0001, 0xFF00FF00FF00FF00, 63, 64)
_MEMORY_OP = re.compile(r"^(LDX|ST|ATOMIC)")
_SIZE = {"B": 1, "H": 2, "W": 4, "DW": 8, "32": 4, "64": 8}


def _value(rng: random.Random) -> int:
    return rng.choice(_SPECIAL64) if rng.random() < 0.4 else rng.getrandbits(64)


def _lddw(reg: int, value: int) -> list[Slot]:
    return [Slot(LDDW, reg, 0, 0, signed(value, 32)), Slot(0, 0, 0, 0, signed(value >> 32, 32))]


def access_size(op: str) -> int:
    m = re.match(r"^(?:LDXS?|STX?)(B|H|W|DW)$|^ATOMIC(32|64)", op)
    assert m, op
    return _SIZE[m.group(1) or m.group(2)]


_MAP_PROGRAM = """
-- map
arr 2 4 8 4
tab 1 8 8 {entries}
-- asm
stdw [r10-8], {key}
stdw [r10-16], {value}
stw [r10-24], {index}
lddw r1, map_by_fd(tab)
mov r2, r10
add r2, -8
mov r3, r10
add r3, -16
mov r4, {flags}
call bpf_map_update_elem
mov r6, r0
stdw [r10-8], {key2}
lddw r1, map_by_fd(tab)
mov r2, r10
add r2, -8
mov r3, r10
add r3, -16
mov r4, {flags2}
call bpf_map_update_elem
lsh r6, 8
add r6, r0
lddw r1, map_by_fd(tab)
mov r2, r10
add r2, -8
call bpf_map_lookup_elem
mov r7, r0
jeq r0, 0, +2
ldxdw r7, [r0]
stdw [r0], 99
lddw r1, map_by_fd(arr)
mov r2, r10
add r2, -24
mov r3, r10
add r3, -16
mov r4, {flags}
call bpf_map_update_elem
mov r8, r0
lddw r1, map_by_fd(arr)
mov r2, r10
add r2, -24
call bpf_map_lookup_elem
mov r9, r0
lddw r1, map_by_fd(tab)
mov r2, r10
add r2, -{delete_at}
call bpf_map_delete_elem
lddw r1, map_by_fd(arr)
mov r2, r10
add r2, -24
call bpf_map_delete_elem
{last}
exit
"""


def _map_cases(op: str, rng: random.Random, count: int) -> list[Program]:
    """Programs with an array and a hash map: updates with every flag, lookups
    that hit and miss, deletes, a full hash map, a forged handle, keys out of range."""
    out = []
    for n in range(count):
        text = _MAP_PROGRAM.format(
            entries=rng.choice((1, 2, 3)),
            key=rng.choice((0, 1, -1, 5)),
            key2=rng.choice((0, 1, 5, 7)),
            value=signed(rng.getrandbits(32), 32),
            index=rng.choice((0, 3, 4, -1)),
            flags=rng.choice((0, 0, 1, 2, 3)),
            flags2=rng.choice((0, 1, 2)),
            delete_at=rng.choice((8, 16)),
            last="mov r1, r10\ncall bpf_map_lookup_elem" if n == count - 1 else "",  # not a map: an error
        )
        if op == "LDDW_MAP_BY_IDX":
            text = text.replace("map_by_fd(", "map_by_idx(")
        program = parse_data(text, f"<{op} case {n}>")
        if op.startswith("LDDW_MAP_VALUE"):
            # r5 = the array's first value plus an offset; write and read through it
            at, src = rng.choice((0, 8, 24, 32)), 2 if op == "LDDW_MAP_VALUE" else 6
            extra = (Slot(LDDW, 5, src, 0, 0), Slot(0, 0, 0, 0, at), Slot(0x7A, 5, 0, 0, 1234), Slot(0x79, 6, 5, 0, 0))
            program = Program(program.path, extra + program.slots, program.mem, maps=program.maps)
        out.append(program)
    return out


def cases(op: str, rng: random.Random, count: int = 6) -> list[Program]:
    """Programs that exercise `op` once from random registers, then exit:
    both ways for a jump, in and out of bounds for memory, every call kind."""
    if op.startswith("LDDW_MAP"):
        return _map_cases(op, rng, count)
    if op == "TICK":  # (the front end places it: loops of a few trips, counted in r0)
        texts = [
            f"-- asm\nmov r0, {rng.randrange(3)}\nmov r1, {rng.randrange(1, 9)}\nagain:\nadd r0, 1\n"
            f"jlt r0, r1, again\nexit\n"
            for _ in range(count)
        ]
        return [parse_data(text, f"<TICK case {n}>") for n, text in enumerate(texts)]
    if op == "CALL_HELPER":
        return _map_cases(op, rng, count // 2) + _cases(op, rng, count)
    return _cases(op, rng, count)


def _cases(op: str, rng: random.Random, count: int) -> list[Program]:
    form = BY_NAME[op]
    memory = bool(_MEMORY_OP.match(op))
    out = []
    for n in range(count):
        slots: list[Slot] = []
        for reg in range(10):
            if reg != 1 or not memory:  # (a memory op's r1 keeps the input buffer's address)
                slots += _lddw(reg, _value(rng))
        regs = [0, *range(2, 10)] if memory else list(range(10))
        dst, src = rng.choice(regs), rng.choice(regs)
        imm = rng.choice(_SPECIAL) if rng.random() < 0.5 else signed(rng.getrandbits(32), 32)
        imm = {0: 0, 1: -1}.get(n, imm)  # (the corners every op with an immediate meets first)
        off = 0
        if form.field == "OFF":
            off = form.value
        elif form.field == "SRC":
            src = form.value
        elif form.field == "IMM":
            imm = form.value
        body: list[Slot]
        if memory:
            size = access_size(op)
            base = rng.choice((1, 10))
            off = -size * rng.randrange(1, 9) if base == 10 else size * rng.randrange(0, 8)
            if n == count - 1:
                off += 64 if base == 1 else 8  # out of bounds
            elif n == count - 2 and op.startswith("ATOMIC"):
                off += 1  # misaligned
            if op.startswith("LDX"):
                body = [Slot(form.opcode, dst, base, off, 0)]
            elif op.startswith("STX") or op.startswith("ATOMIC"):  # the value in src (an atomic's kind in imm)
                body = [Slot(form.opcode, base, src, off, form.value if form.field == "IMM" else 0)]
            else:  # ST: the value in imm
                body = [Slot(form.opcode, base, 0, off, imm)]
        elif op == "LDDW":
            body = _lddw(dst, _value(rng))
        elif op == "CALL_LOCAL":
            # the callee changes r0 and r6 and writes its own stack; the caller's r6 and stack survive
            body = [
                Slot(0x7A, 10, 0, -8, 77),
                Slot(form.opcode, 0, 1, 0, 2),
                Slot(0x95, 0, 0, 0, 0),
                Slot(0x05, 0, 0, 0, 0),
                Slot(0xB7, 6, 0, 0, 99),
                Slot(0x7A, 10, 0, -8, 55),
                Slot(0x07, 0, 0, 0, 5),
                Slot(0x95, 0, 0, 0, 0),
            ]
            out.append(Program(f"<{op} case {n}>", tuple(slots + body), bytes(range(64))))
            continue
        elif op == "FELL_OFF":
            out.append(Program(f"<{op} case {n}>", tuple([*slots, Slot(0xB7, 0, 0, 0, 1)]), bytes(range(64))))
            continue
        elif op == "EXIT":
            body = []
        elif op in ("CALL_HELPER", "CALLX", "CALL_RUNTIME"):
            helper = 5 if n < count - 1 else 7  # the last one: an unknown helper
            arg = [Slot(0xB7, 1, 0, 0, 0 if n == 0 else 42)]  # 0: unwind ends the program
            if op == "CALLX":
                body = [*arg, Slot(0xB7, 4, 0, 0, helper), Slot(0x8D, 4, 0, 0, 0)]
            else:
                body = [*arg, Slot(form.opcode, 0, src, 0, helper)]
        else:
            body = [Slot(form.opcode, dst, src, off, imm)]
        if re.match(r"^(JA|JA32|J[A-Z]+(64|32)_[KX])$", op):
            j = body[-1]
            body[-1] = Slot(j.opcode, j.dst, j.src, 0 if op == "JA32" else 1, 1 if op == "JA32" else j.imm)
            body.append(Slot(0xB7, 0, 0, 0, 1234))  # skipped when the jump is taken
        body.append(Slot(0x95, 0, 0, 0, 0))
        out.append(Program(f"<{op} case {n}>", tuple(slots + body), bytes(range(64))))
    return out
