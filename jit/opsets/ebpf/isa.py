"""eBPF's instruction set as this op set holds it: the state's layout (read
from state.h), the op table (ops.def: which opcode, and which offset,
immediate or source field, makes which op), programs as instruction slots,
and decoding slots into checked instructions and then into steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from jit.codegen.step import Step
from jit.opsets import parse_table
from jit.opsets.model import Rejected

HERE = Path(__file__).resolve().parent
MASK = (1 << 64) - 1
M32 = (1 << 32) - 1

# -- the state, from state.h (its one definition) -----------------------------------------

_STATE_H = (HERE / "state.h").read_text()
CONST = {name: int(value) for name, value in re.findall(r"^\s*([A-Z][A-Z0-9_]*)\s*=\s*(\d+)\s*,", _STATE_H, re.M)}


def _fields() -> dict[str, tuple[int, int]]:
    """EbpfState's fields: name -> (word index, words)."""
    body = re.search(r"typedef struct EbpfState \{(.*?)\} EbpfState;", _STATE_H, re.S)
    assert body is not None, "state.h defines no EbpfState"
    out: dict[str, tuple[int, int]] = {}
    at = 0
    for name, dims in re.findall(
        r"uint64_t\s+(\w+)(?:\[([^\]]+)\])?\s*;", re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.S)
    ):
        words = 1
        for factor in dims.split("*") if dims else ():
            factor = factor.strip()
            words *= int(factor) if factor.isdigit() else CONST[factor]
        out[name] = (at, words)
        at += words
    return out


FIELDS = _fields()
STATE_WORDS = sum(words for _, words in FIELDS.values())
STATE_SIZE = 8 * STATE_WORDS
STACK_SIZE, MAX_FRAMES = CONST["STACK_SIZE"], CONST["MAX_FRAMES"]
ERRORS = {value: name for name, value in CONST.items() if name.startswith("ERR_")}

# -- the op table --------------------------------------------------------------------------

TABLE = parse_table((HERE / "ops.def").read_text(), str(HERE / "ops.def"))


@dataclass(frozen=True)
class OpForm:
    name: str
    opcode: int
    field: str  # "-", "OFF", "IMM" or "SRC"
    value: int


FORMS = tuple(OpForm(r.name, int(r.columns[0], 0), r.columns[1], int(r.columns[2], 0)) for r in TABLE)
BY_OPCODE: dict[int, list[OpForm]] = {}
for _form in FORMS:
    BY_OPCODE.setdefault(_form.opcode, []).append(_form)
BY_NAME = {f.name: f for f in FORMS}
LDDW = 0x18


def signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


# -- programs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One 64-bit instruction slot (RFC 9669 section 3)."""

    opcode: int
    dst: int
    src: int
    off: int  # signed 16
    imm: int  # signed 32
    line: int = 0  # in the source file (0: none)

    def word(self) -> int:
        return self.opcode | self.dst << 8 | self.src << 12 | (self.off & 0xFFFF) << 16 | (self.imm & M32) << 32

    @classmethod
    def from_word(cls, word: int, line: int = 0) -> Slot:
        return cls(word & 0xFF, word >> 8 & 0xF, word >> 12 & 0xF, signed(word >> 16, 16), signed(word >> 32, 32), line)


@dataclass(frozen=True)
class MapDef:
    """A map of the `-- map` section: `name type key_size value_size max_entries`."""

    name: str
    type: int  # MAP_HASH (1) or MAP_ARRAY (2)
    key_size: int
    value_size: int
    max_entries: int
    init: bytes = b""  # an array map's first bytes when a run starts (an ELF object's data section)

    def data_size(self) -> int:
        if self.type == CONST["MAP_ARRAY"]:
            return pad8(self.value_size * self.max_entries)
        return self.max_entries * (CONST["HASH_USED_BYTES"] + pad8(self.key_size) + pad8(self.value_size))


def pad8(n: int) -> int:
    return (n + 7) // 8 * 8


MAPDEF_SIZE = 8 * CONST["MAPDEF_WORDS"]
MAX_MAP_BYTES = 1 << 22
HELPERS_BY_NAME = {"bpf_map_lookup_elem": 1, "bpf_map_update_elem": 2, "bpf_map_delete_elem": 3}


def maps_image(maps: tuple[MapDef, ...]) -> bytes:
    """The maps' data as a run starts: each map's initial bytes, zeros after."""
    return b"".join(m.init + bytes(m.data_size() - len(m.init)) for m in maps)


def map_offsets(maps: tuple[MapDef, ...]) -> list[int]:
    """Where each map's data starts in the maps buffer."""
    out, at = [], 0
    for m in maps:
        out.append(at)
        at += m.data_size()
    return out


@dataclass(frozen=True)
class Program:
    path: str
    slots: tuple[Slot, ...]
    mem: bytes = b""
    result: int | None = None  # `-- result`
    expects_error: bool = False  # `-- error`
    entry: int = 0  # first slot to run
    maps: tuple[MapDef, ...] = ()

    def where(self, slot: int) -> str:
        line = self.slots[slot].line if 0 <= slot < len(self.slots) else 0
        return f"{self.path}:{line}" if line else f"{self.path}: instruction {slot}"


@dataclass(slots=True)
class Insn:
    """A decoded instruction: its op, and the operands the stencil's holes take.

    Not frozen, as jit.codegen.step.Step is not: decoding is on the compile
    path, and a frozen dataclass's __init__ costs several times as much."""

    op: str
    slot: int
    dst: int
    src: int
    off: int
    imm: int  # sign-extended; LDDW: the whole 64-bit constant (as signed)
    target: int | None = None  # slot a jump or local call goes to (len(slots): past the end)


# -- decoding ------------------------------------------------------------------------------

_WRITES_DST = re.compile(
    r"^(ADD|SUB|MUL|DIV|SDIV|MOD|SMOD|OR|AND|LSH|RSH|ARSH|XOR|MOV|MOVSX|NEG|LE|BE|BSWAP|LDX|LDXS|LDDW)"
)
_JUMPS = re.compile(r"^(JA|JA32|J[A-Z]+(64|32)_[KX]|CALL_LOCAL)$")


@dataclass(frozen=True)
class _Kind:
    """What decoding needs to know of an op, worked out once per op."""

    writes_dst: bool
    writes_src: bool  # the fetching atomics and xchg write their src register
    jump: bool  # has a target: offset (or imm) relative to the next slot
    lddw: bool  # takes two slots


_KINDS = {
    f.name: _Kind(
        bool(_WRITES_DST.match(f.name)),
        "FETCH" in f.name or ("XCHG" in f.name and "CMP" not in f.name),
        bool(_JUMPS.match(f.name)),
        f.name.startswith("LDDW"),
    )
    for f in FORMS
}


@dataclass(frozen=True)
class _Opcode:
    """An opcode's forms as decoding looks them up: the field that tells
    them apart, the form for each of its values, and the form that takes
    any value ("-"), if one does.  The table's order decides, as it reads:
    the first form that fits."""

    field: str
    by_value: dict[int, tuple[OpForm, _Kind]]
    otherwise: tuple[OpForm, _Kind] | None


def _opcodes() -> dict[int, _Opcode]:
    out = {}
    for opcode, forms in BY_OPCODE.items():
        k = next((k for k, f in enumerate(forms) if f.field == "-"), len(forms))
        by_value: dict[int, tuple[OpForm, _Kind]] = {}
        for f in forms[:k]:
            by_value.setdefault(f.value, (f, _KINDS[f.name]))
        otherwise = (forms[k], _KINDS[forms[k].name]) if k < len(forms) else None
        out[opcode] = _Opcode(forms[0].field, by_value, otherwise)
    return out


_OPCODES = _opcodes()


def decode(program: Program) -> list[Insn]:
    """Every instruction, checked against RFC 9669; a bad one is Rejected with file:line."""
    out: list[Insn] = []
    slots = program.slots
    n = len(slots)
    second = set()
    k = 0

    def bad(what: str) -> Rejected:
        return Rejected(f"{program.where(k)}: {what}")

    while k < n:
        s = slots[k]
        opcode = _OPCODES.get(s.opcode)
        if opcode is None:
            raise bad(f"unknown opcode {s.opcode:#04x}")
        key = opcode.field  # (what tells this opcode's ops apart)
        value = s.off if key == "OFF" else s.imm & M32 if key == "IMM" else s.src
        found = opcode.by_value.get(value, opcode.otherwise)
        if found is None:
            raise bad(f"opcode {s.opcode:#04x} with {key.lower()} {value} is not an instruction")
        form, kind = found
        if s.dst > 10 or s.src > 10:
            raise bad(f"register r{max(s.dst, s.src)} does not exist (r0 to r10)")
        if (s.dst == 10 and kind.writes_dst) or (s.src == 10 and kind.writes_src):
            raise bad("r10 is read-only")
        imm, target = s.imm, None
        if kind.lddw:
            if k + 1 >= n or slots[k + 1].opcode or slots[k + 1].dst or slots[k + 1].src or slots[k + 1].off:
                raise bad("lddw needs a second slot holding only the upper 32 bits")
            imm = signed((s.imm & M32) | (slots[k + 1].imm & M32) << 32, 64)
            if form.name != "LDDW":
                fd = s.imm
                if not 0 <= fd < len(program.maps):
                    raise bad(f"no map with descriptor {fd} ({len(program.maps)} maps)")
                # a handle: the descriptor's offset; a value: its offset in the maps' data
                value_at = map_offsets(program.maps)[fd] + slots[k + 1].imm
                imm = fd * MAPDEF_SIZE if form.name in ("LDDW_MAP", "LDDW_MAP_BY_IDX") else value_at
            second.add(k + 1)
        elif kind.jump:
            target = k + 1 + (s.imm if form.name in ("JA32", "CALL_LOCAL") else s.off)
            if not 0 <= target <= n:
                raise bad(f"jump to instruction {target}, outside the program (0 to {n - 1})")
        elif form.name == "CALLX" and s.dst == 0 and s.imm:
            # (Some assemblers put callx's register in imm.)
            if not 0 <= s.imm <= 10:
                raise bad(f"callx register r{s.imm} does not exist")
            s = Slot(s.opcode, s.imm, s.src, s.off, 0, s.line)
        out.append(Insn(form.name, k, s.dst, s.src, s.off, imm, target))
        k += 2 if kind.lddw else 1
    for insn in out:
        if insn.target is not None and insn.target in second:
            raise Rejected(f"{program.where(insn.slot)}: jump into the middle of a lddw")
    if not 0 <= program.entry < n or program.entry in second:
        raise Rejected(f"{program.path}: entry point {program.entry} is not an instruction")
    return out


def loop_heads(insns: list[Insn]) -> set[int]:
    """Slots a backward jump lands on (local calls aside: they nest at most
    MAX_FRAMES deep).  Every way round a loop passes one."""
    return {i.target for i in insns if i.target is not None and i.op != "CALL_LOCAL" and i.target <= i.slot}


def steps(program: Program) -> list[Step]:
    """One step per instruction; a TICK before each loop head (the loop
    budget, state.h); FELL_OFF after the last (where running past the end
    lands); a jump first when the entry point is not the first instruction."""
    insns = decode(program)
    heads = loop_heads(insns)
    order: list[Insn | str] = ["ENTRY"] if program.entry else []
    step_of: dict[int, int] = {}
    for insn in insns:
        step_of[insn.slot] = len(order)  # (a jump to a loop head lands on its TICK)
        if insn.slot in heads:
            order.append("TICK")
        order.append(insn)
    step_of[len(program.slots)] = len(order)
    order.append("FELL_OFF")
    out = []
    bias = CONST["OFF_BIAS"]
    for k, item in enumerate(order):
        if isinstance(item, Insn):  # (first: an Insn compared with a string is a dataclass __eq__ call)
            target = None if item.target is None else step_of[item.target]
            # (registers as byte offsets into the state's r[], the offset biased: template.c's small holes)
            # (positionally: with keywords the call costs half as much again, per step)
            out.append(
                Step(
                    item.op, 8 * item.dst, 8 * item.src, item.slot, target, None, None, None, item.off + bias, item.imm
                )
            )
        elif item == "ENTRY":
            out.append(Step("JA", position=program.entry, target=step_of[program.entry]))
        elif item == "TICK":
            out.append(Step("TICK", position=cast(Insn, order[k + 1]).slot))
        else:
            out.append(Step("FELL_OFF", position=len(program.slots)))
    return out
