"""The reference semantics: eBPF in Python, written from RFC 9669 and
independent of bodies.h, which every engine must agree with."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jit.opsets.model import Outcome

from .isa import (
    CONST,
    M32,
    MAPDEF_SIZE,
    MASK,
    MAX_FRAMES,
    STACK_SIZE,
    Program,
    decode,
    loop_heads,
    map_offsets,
    maps_image,
    pad8,
    signed,
)
from .state import error_message, observed_of, place

# Where the reference puts the buffers.  Values a program computes are told
# apart from addresses by where they point (outcome: a register pointing into
# a buffer is compared as a place), so these are numbers arithmetic does not
# stumble on (a power of two would: the fuzzer found 1 << 28).
REF_MEM = 0x2B7C_1357_0000
REF_STACK = 0x2B7C_2468_0000
REF_MAPS = 0x2B7C_3579_0000
REF_MAPDEFS = 0x2B7C_468A_0000
E2BIG, EEXIST, EINVAL, ENOENT = 7, 17, 22, 2


class _Fault(Exception):
    def __init__(self, code: str, aux: int = 0, aux2: int = 0) -> None:
        self.code, self.aux, self.aux2 = code, aux, aux2


@dataclass
class _Machine:
    mem: bytearray
    stack: bytearray
    maps: bytearray
    regs: list[int] = field(default_factory=lambda: [0] * 11)

    def locate(self, addr: int, size: int) -> tuple[bytearray, int]:
        for buf, base in ((self.mem, REF_MEM), (self.stack, REF_STACK), (self.maps, REF_MAPS)):
            off = addr - base
            if off >= 0 and off + size <= len(buf):
                return buf, off
        raise _Fault("ERR_MEMORY", addr & MASK, size)

    def load(self, addr: int, size: int) -> int:
        buf, off = self.locate(addr & MASK, size)
        return int.from_bytes(buf[off : off + size], "little")

    def store(self, addr: int, size: int, value: int) -> None:
        buf, off = self.locate(addr & MASK, size)
        buf[off : off + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")


def _map_helper(m: _Machine, program: Program, helper: int) -> None:
    """bpf_map_lookup_elem (1), _update_elem (2), _delete_elem (3) on array and
    hash maps, as Linux defines their results; the data laid out as state.h says."""
    r = m.regs
    index, rem = divmod(r[1] - REF_MAPDEFS, MAPDEF_SIZE)
    if rem or not 0 <= index < len(program.maps):
        raise _Fault("ERR_BAD_MAP", r[1] & MASK)
    mp, base = program.maps[index], REF_MAPS + map_offsets(program.maps)[index]
    key = m.load(r[2], mp.key_size).to_bytes(mp.key_size, "little")
    value = m.load(r[3], mp.value_size) if helper == 2 else 0
    flags = r[4]
    if mp.type == CONST["MAP_ARRAY"]:
        i = int.from_bytes(key, "little")
        at = base + i * mp.value_size
        if helper == 1:
            r[0] = at if i < mp.max_entries else 0
        elif helper == 2:
            error = EINVAL if flags > 2 else E2BIG if i >= mp.max_entries else EEXIST if flags == 1 else 0
            if not error:
                m.store(at, mp.value_size, value)
            r[0] = -error & MASK
        else:
            r[0] = -EINVAL & MASK
        return
    used = CONST["HASH_USED_BYTES"]
    stride = used + pad8(mp.key_size) + pad8(mp.value_size)
    entries = [base + k * stride for k in range(mp.max_entries)]
    wanted = int.from_bytes(key, "little")
    found = next((e for e in entries if m.load(e, 8) and m.load(e + used, mp.key_size) == wanted), None)
    if helper == 1:
        r[0] = found + used + pad8(mp.key_size) if found is not None else 0
    elif helper == 2:
        if flags > 2 or (found is not None and flags == 1) or (found is None and flags == 2):
            r[0] = -(EINVAL if flags > 2 else EEXIST if found is not None else ENOENT) & MASK
            return
        slot = found if found is not None else next((e for e in entries if not m.load(e, 8)), None)
        if slot is None:
            r[0] = -E2BIG & MASK
            return
        m.store(slot, 8, 1)
        m.store(slot + used, mp.key_size, int.from_bytes(key, "little"))
        m.store(slot + used + pad8(mp.key_size), mp.value_size, value)
        r[0] = 0
    else:
        if found is not None:
            m.store(found, 8, 0)
        r[0] = 0 if found is not None else -ENOENT & MASK


def _alu(name: str, a: int, b: int, bits: int) -> int:
    """RFC 9669 section 4.1 on `bits`-bit unsigned operands."""
    m = (1 << bits) - 1
    a, b = a & m, b & m
    sa, sb = signed(a, bits), signed(b, bits)
    if name == "ADD":
        return a + b
    if name == "SUB":
        return a - b
    if name == "MUL":
        return a * b
    if name == "DIV":
        return a // b if b else 0
    if name == "SDIV":
        if sb == 0:
            return 0
        q = abs(sa) // abs(sb)
        return q if (sa < 0) == (sb < 0) else -q
    if name == "MOD":
        return a % b if b else a
    if name == "SMOD":
        if sb == 0:
            return a
        r = abs(sa) % abs(sb)
        return -r if sa < 0 else r
    if name == "OR":
        return a | b
    if name == "AND":
        return a & b
    if name == "XOR":
        return a ^ b
    if name == "LSH":
        return a << (b % bits)
    if name == "RSH":
        return a >> (b % bits)
    if name == "ARSH":
        return sa >> (b % bits)
    if name == "MOV":
        return b
    raise AssertionError(name)


def _compare(name: str, a: int, b: int, bits: int) -> bool:
    m = (1 << bits) - 1
    a, b = a & m, b & m
    sa, sb = signed(a, bits), signed(b, bits)
    return {
        "JEQ": a == b,
        "JNE": a != b,
        "JGT": a > b,
        "JGE": a >= b,
        "JLT": a < b,
        "JLE": a <= b,
        "JSET": a & b != 0,
        "JSGT": sa > sb,
        "JSGE": sa >= sb,
        "JSLT": sa < sb,
        "JSLE": sa <= sb,
    }[name]


def _swap(value: int, bits: int) -> int:
    return int.from_bytes((value & ((1 << bits) - 1)).to_bytes(bits // 8, "little"), "big")


def interpret(program: Program) -> Outcome:
    insns = decode(program)
    by_slot = {i.slot: i for i in insns}
    heads = loop_heads(insns)
    budget = CONST["LOOP_BUDGET"]
    maps = bytearray(maps_image(program.maps))
    m = _Machine(bytearray(program.mem), bytearray(STACK_SIZE * MAX_FRAMES), maps)
    r = m.regs
    r[1], r[2], r[10] = REF_MEM, len(program.mem), REF_STACK + len(m.stack)
    frames: list[tuple[int, list[int]]] = []
    pc = program.entry
    n = len(program.slots)
    addresses = {"mem": REF_MEM, "stack": REF_STACK, "maps": REF_MAPS, "mapdefs": REF_MAPDEFS}
    sizes = {"mem": len(m.mem), "stack": len(m.stack), "maps": len(maps), "mapdefs": MAPDEF_SIZE * len(program.maps)}

    def inside(value: int) -> str | None:
        for name, base in addresses.items():
            if base <= value <= base + sizes[name]:
                return f"{name}{value - base:+#x}"
        return None

    def finish(error: str | None) -> Outcome:
        observed = observed_of([v & MASK for v in r[:10]], inside, bytes(m.mem), bytes(m.stack), bytes(m.maps))
        return Outcome(None if error else r[0] & MASK, error, observed)

    def fail(code: str, at: int, aux: int = 0, aux2: int = 0) -> Outcome:
        message = error_message(program, CONST[code], at, aux, aux2, lambda a: place(a, addresses, sizes))
        return finish(message)

    while True:
        if pc == n:
            return fail("ERR_FELL_OFF", n)
        if pc in heads:
            if budget == 0:
                return fail("ERR_BUDGET", pc)
            budget -= 1
        i = by_slot[pc]
        op = i.op
        nxt: int | None = pc + (2 if op.startswith("LDDW") else 1)
        try:
            mt = re.match(r"^(S?DIV|S?MOD|ADD|SUB|MUL|OR|AND|LSH|RSH|ARSH|XOR|MOV)(64|32)_([KX])$", op)
            if mt:
                bits = int(mt.group(2))
                b = r[i.src] if mt.group(3) == "X" else i.imm & MASK
                r[i.dst] = _alu(mt.group(1), r[i.dst], b, bits) & ((1 << bits) - 1)
            elif op.startswith("MOVSX"):
                to, frm = (int(x) for x in op[5:].split("_"))
                r[i.dst] = signed(r[i.src], frm) & ((1 << to) - 1)
            elif op.startswith("NEG"):
                bits = int(op[3:])
                r[i.dst] = -r[i.dst] & ((1 << bits) - 1)
            elif op.startswith(("LE", "BE", "BSWAP")):
                bits = int(op.lstrip("LEBSWAP"))
                r[i.dst] = r[i.dst] & ((1 << bits) - 1) if op.startswith("LE") else _swap(r[i.dst], bits)
            elif op in ("JA", "JA32"):
                nxt = i.target
            elif re.match(r"^J[A-Z]+(64|32)_[KX]$", op):
                name, rest = op.split("_")[0][:-2], op[-1]
                bits = int(op.split("_")[0][-2:])
                b = r[i.src] if rest == "X" else i.imm & MASK
                if _compare(name, r[i.dst], b, bits):
                    nxt = i.target
            elif op in ("CALL_HELPER", "CALLX"):
                helper = i.imm & M32 if op == "CALL_HELPER" else r[i.dst]
                if helper == 5:  # the conformance suite's unwind
                    r[0] = r[1]
                    if r[1] == 0:
                        return finish(None)
                elif helper in (1, 2, 3):
                    _map_helper(m, program, helper)
                else:
                    return fail("ERR_HELPER", pc, helper)
            elif op == "CALL_RUNTIME":
                return fail("ERR_RUNTIME_CALL", pc, i.imm & M32)
            elif op == "CALL_LOCAL":
                if len(frames) >= MAX_FRAMES - 1:
                    return fail("ERR_CALL_DEPTH", pc)
                frames.append((pc + 1, r[6:11]))
                r[10] -= STACK_SIZE
                nxt = i.target
            elif op == "EXIT":
                if not frames:
                    return finish(None)
                nxt, saved = frames.pop()
                r[6:11] = saved
            elif op == "LDDW":
                r[i.dst] = i.imm & MASK
            elif op in ("LDDW_MAP", "LDDW_MAP_BY_IDX"):
                r[i.dst] = REF_MAPDEFS + i.imm
            elif op in ("LDDW_MAP_VALUE", "LDDW_MAP_VALUE_BY_IDX"):
                r[i.dst] = (REF_MAPS + i.imm) & MASK
            elif op.startswith("LDX"):
                size = {"B": 1, "H": 2, "W": 4, "DW": 8}[op[4:] if op.startswith("LDXS") else op[3:]]
                value = m.load(r[i.src] + i.off, size)
                r[i.dst] = signed(value, 8 * size) & MASK if op.startswith("LDXS") else value
            elif op.startswith("STX"):
                size = {"B": 1, "H": 2, "W": 4, "DW": 8}[op[3:]]
                m.store(r[i.dst] + i.off, size, r[i.src])
            elif op.startswith("ST"):
                size = {"B": 1, "H": 2, "W": 4, "DW": 8}[op[2:]]
                m.store(r[i.dst] + i.off, size, i.imm)
            elif op.startswith("ATOMIC"):
                bits = int(op[6:8])
                size, mask = bits // 8, (1 << bits) - 1
                addr = (r[i.dst] + i.off) & MASK
                old = m.load(addr, size)
                if addr % size:
                    raise _Fault("ERR_MISALIGNED", addr, size)
                kind = op[9:]
                if kind == "CMPXCHG":
                    if old == r[0] & mask:
                        m.store(addr, size, r[i.src])
                    r[0] = old
                elif kind == "XCHG":
                    m.store(addr, size, r[i.src])
                    r[i.src] = old
                else:
                    fetch = kind.startswith("FETCH_")
                    name = kind.removeprefix("FETCH_")
                    m.store(addr, size, _alu(name, old, r[i.src], bits))
                    if fetch:
                        r[i.src] = old
            elif op == "FELL_OFF":
                return fail("ERR_FELL_OFF", n)
            else:
                raise AssertionError(f"the reference has no semantics for {op}")
        except _Fault as f:
            return fail(f.code, pc, f.aux, f.aux2)
        assert nxt is not None
        pc = nxt
