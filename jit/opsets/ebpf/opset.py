"""eBPF (RFC 9669) as an op set: front ends, reference semantics, state layout.

Two front ends make a Program (instruction slots, the input buffer, what
the file expects):
  * the `.data` text format of the eBPF conformance suite (and of uBPF and
    rbpf): `-- asm` (assembly), `-- raw` (64-bit instruction words), `-- mem`
    (the input buffer, hex bytes), `-- result` (the expected r0) and
    `-- error` (the run must fail); other sections are ignored;
  * ELF objects from `clang -target bpf -O2 -c` (the code of `.text`).
Decoding turns slots into instructions through the op table (ops.def: which
opcode, and which offset, immediate or source field, makes which op), and
rejects what RFC 9669 does not define.  `interpret` is the reference
semantics, written from the RFC independently of bodies.h; the engines must
agree with it.
"""

from __future__ import annotations

import hashlib
import random
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from jit.codegen.step import Step
from jit.errors import Diagnostic, ProgramError
from jit.opsets import parse_table
from jit.opsets.model import Outcome, Rejected

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


def _signed(value: int, bits: int) -> int:
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
        return cls(
            word & 0xFF, word >> 8 & 0xF, word >> 12 & 0xF, _signed(word >> 16, 16), _signed(word >> 32, 32), line
        )


@dataclass(frozen=True)
class MapDef:
    """A map of the `-- map` section: `name type key_size value_size max_entries`."""

    name: str
    type: int  # MAP_HASH (1) or MAP_ARRAY (2)
    key_size: int
    value_size: int
    max_entries: int

    def data_size(self) -> int:
        if self.type == CONST["MAP_ARRAY"]:
            return _pad8(self.value_size * self.max_entries)
        return self.max_entries * (CONST["HASH_USED_BYTES"] + _pad8(self.key_size) + _pad8(self.value_size))


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8


MAPDEF_SIZE = 8 * CONST["MAPDEF_WORDS"]
MAX_MAP_BYTES = 1 << 22
HELPERS_BY_NAME = {"bpf_map_lookup_elem": 1, "bpf_map_update_elem": 2, "bpf_map_delete_elem": 3}


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


@dataclass(frozen=True)
class Insn:
    """A decoded instruction: its op, and the operands the stencil's holes take."""

    op: str
    slot: int
    dst: int
    src: int
    off: int
    imm: int  # sign-extended; LDDW: the whole 64-bit constant (as signed)
    target: int | None = None  # slot a jump or local call goes to (len(slots): past the end)


# -- the .data format ----------------------------------------------------------------------

_REG = re.compile(r"^%?r(\d+)$")
_MEM = re.compile(r"^\[\s*%?r(\d+)\s*(?:([+-])\s*(\w+))?\s*\]$")
_ALU = {  # RFC 9669 table 5: the operation code, shifted left 4 in the opcode
    "add": 0x0,
    "sub": 0x1,
    "mul": 0x2,
    "div": 0x3,
    "sdiv": 0x3,
    "or": 0x4,
    "and": 0x5,
    "lsh": 0x6,
    "rsh": 0x7,
    "mod": 0x9,
    "smod": 0x9,
    "xor": 0xA,
    "mov": 0xB,
    "arsh": 0xC,
}
_JMP = ("jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "jlt", "jle", "jslt", "jsle")
_SIZES = {"b": "B", "h": "H", "w": "W", "dw": "DW"}
_ATOMIC = {"add": 0x00, "or": 0x40, "and": 0x50, "xor": 0xA0}


class _Asm:
    def __init__(self, path: str, maps: list[str]) -> None:
        self.path = path
        self.maps = maps
        self.slots: list[Slot] = []
        self.labels: dict[str, int] = {}
        self.fixups: list[tuple[int, str, str, int]] = []  # slot, label, field, line
        self.problems: list[Diagnostic] = []
        self.first_exit: int | None = None

    def fail(self, line: int, message: str) -> None:
        self.problems.append(Diagnostic(self.path, line, 1, message))

    def number(self, text: str, line: int) -> int:
        t = text.strip()
        negative = t.startswith("-")
        body = t.lstrip("+-")
        try:
            value = int(body, 16) if body.lower().startswith("0x") else int(body, 10)
        except ValueError:
            raise _Bad(f"{text!r} is not a number") from None
        return -value if negative else value

    def reg(self, text: str) -> int:
        m = _REG.match(text.strip())
        if not m:
            raise _Bad(f"{text!r} is not a register (r0 to r10, with or without %)")
        return int(m.group(1))

    def mem(self, text: str, line: int) -> tuple[int, int]:
        m = _MEM.match(text.strip())
        if not m:
            raise _Bad(f"{text!r} is not a memory operand like [r1+8]")
        off = 0
        if m.group(2):
            off = self.number(m.group(3), line)
            off = -off if m.group(2) == "-" else off
        return int(m.group(1)), off

    def emit(self, line: int, opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> None:
        self.slots.append(Slot(opcode, dst, src, _signed(off, 16), _signed(imm, 32), line))

    def target(self, text: str, line: int, field: str) -> int:
        """A jump's offset: +N/-N as written, or a label's (fixed up at the end)."""
        t = text.strip()
        if t[:1] in "+-":
            return self.number(t, line)
        if not re.match(r"^[A-Za-z_.][\w.]*$", t):
            raise _Bad(f"{text!r} is neither a label nor an offset like +2")
        self.fixups.append((len(self.slots), t, field, line))
        return 0

    def line(self, text: str, lineno: int) -> None:
        text = text.split("#", 1)[0].strip()
        if not text:
            return
        m = re.match(r"^([A-Za-z_.][\w.]*):\s*(.*)$", text)
        if m:
            if m.group(1) in self.labels:
                raise _Bad(f"label {m.group(1)!r} is defined twice")
            self.labels[m.group(1)] = len(self.slots)
            if not m.group(2):
                return
            text = m.group(2)
        mnemonic, _, rest = text.partition(" ")
        mnemonic = mnemonic.lower()
        ops = [o for o in re.split(r"\s*,\s*|\s+", rest.strip()) if o] if rest.strip() else []
        self.instruction(mnemonic, ops, lineno)

    def want(self, ops: list[str], n: int, mnemonic: str) -> None:
        if len(ops) != n:
            raise _Bad(f"{mnemonic} takes {n} operand{'s' if n != 1 else ''}, not {len(ops)}")

    def instruction(self, mn: str, ops: list[str], line: int) -> None:
        if mn == "exit":
            self.want(ops, 0, mn)
            if self.first_exit is None:
                self.first_exit = len(self.slots)
            return self.emit(line, 0x95)
        if mn == "lddw":
            self.want(ops, 2, mn)
            m = re.match(r"^map_by_(fd|idx)\((\w+)\)$", ops[1])
            if m:
                if m.group(2) not in self.maps:
                    raise _Bad(f"no map {m.group(2)!r} in the -- map section")
                # (src 1: by descriptor, 5: by index; a map's descriptor here is its index)
                self.emit(line, LDDW, self.reg(ops[0]), 1 if m.group(1) == "fd" else 5, 0, self.maps.index(m.group(2)))
                return self.emit(line, 0)
            value = self.number(ops[1], line) & MASK
            self.emit(line, LDDW, self.reg(ops[0]), 0, 0, value & M32)
            return self.emit(line, 0, 0, 0, 0, value >> 32)
        if mn == "call" or mn == "callx":
            return self.call(mn, ops, line)
        if mn == "lock":
            return self.atomic(ops, line)
        if mn in ("ja", "ja32"):
            self.want(ops, 1, mn)
            if mn == "ja":
                return self.emit(line, 0x05, off=self.target(ops[0], line, "off"))
            return self.emit(line, 0x06, imm=self.target(ops[0], line, "imm"))
        m = re.match(r"^(be|le|bswap|swap)(16|32|64)$", mn)
        if m:
            self.want(ops, 1, mn)
            opcode = {"be": 0xDC, "le": 0xD4}.get(m.group(1), 0xD7)
            return self.emit(line, opcode, self.reg(ops[0]), imm=int(m.group(2)))
        m = re.match(r"^(ldxs|ldx)(dw|b|h|w)$", mn)
        if m:
            self.want(ops, 2, mn)
            src, off = self.mem(ops[1], line)
            return self.emit(
                line, BY_NAME[f"{m.group(1).upper()}{_SIZES[m.group(2)]}"].opcode, self.reg(ops[0]), src, off
            )
        m = re.match(r"^(stx|st)(dw|b|h|w)$", mn)
        if m:
            self.want(ops, 2, mn)
            dst, off = self.mem(ops[0], line)
            name = f"{m.group(1).upper()}{_SIZES[m.group(2)]}"
            if m.group(1) == "stx":
                return self.emit(line, BY_NAME[name].opcode, dst, self.reg(ops[1]), off)
            return self.emit(line, BY_NAME[name].opcode, dst, 0, off, self.number(ops[1], line))
        m = re.match(r"^(j[a-z]+?)(32)?$", mn)
        if m and m.group(1) in _JMP:
            self.want(ops, 3, mn)
            code = {"jeq": 1, "jgt": 2, "jge": 3, "jset": 4, "jne": 5, "jsgt": 6, "jsge": 7}.get(m.group(1))
            code = code if code is not None else {"jlt": 0xA, "jle": 0xB, "jslt": 0xC, "jsle": 0xD}[m.group(1)]
            cls = 0x06 if m.group(2) else 0x05
            dst = self.reg(ops[0])
            if _REG.match(ops[1]):
                opcode, src, imm = code << 4 | 0x08 | cls, self.reg(ops[1]), 0
            else:
                opcode, src, imm = code << 4 | cls, 0, self.number(ops[1], line)
            return self.emit(line, opcode, dst, src, self.target(ops[2], line, "off"), imm)
        m = re.match(r"^movsx(8|16|32)(32|64)$", mn)
        if m:
            self.want(ops, 2, mn)
            cls = 0x04 if m.group(2) == "32" else 0x07
            return self.emit(line, 0xB0 | 0x08 | cls, self.reg(ops[0]), self.reg(ops[1]), int(m.group(1)))
        m = re.match(r"^([a-z]+?)(32|64)?$", mn)
        if m and (m.group(1) in _ALU or m.group(1) == "neg"):
            base, cls = m.group(1), 0x04 if m.group(2) == "32" else 0x07
            if base == "neg":
                self.want(ops, 1, mn)
                return self.emit(line, 0x80 | cls, self.reg(ops[0]))
            self.want(ops, 2, mn)
            code, off = _ALU[base], 1 if base in ("sdiv", "smod") else 0
            dst = self.reg(ops[0])
            if _REG.match(ops[1]):
                return self.emit(line, code << 4 | 0x08 | cls, dst, self.reg(ops[1]), off)
            return self.emit(line, code << 4 | cls, dst, 0, off, self.number(ops[1], line))
        raise _Bad(f"unknown instruction {mn!r}")

    def call(self, mn: str, ops: list[str], line: int) -> None:
        if mn == "callx" or (len(ops) == 1 and _REG.match(ops[0])):
            self.want(ops, 1, mn)
            return self.emit(line, 0x8D, self.reg(ops[0]))
        if len(ops) == 1 and ops[0] in HELPERS_BY_NAME:
            return self.emit(line, 0x85, 0, 0, 0, HELPERS_BY_NAME[ops[0]])
        if len(ops) == 1:
            return self.emit(line, 0x85, 0, 0, 0, self.number(ops[0], line))
        self.want(ops, 2, mn)
        mode = ops[0].lower()
        if mode == "helper":
            if _REG.match(ops[1]):
                return self.emit(line, 0x8D, self.reg(ops[1]))
            return self.emit(line, 0x85, 0, 0, 0, self.number(ops[1], line))
        if mode == "local":
            return self.emit(line, 0x85, 0, 1, 0, self.target(ops[1], line, "imm"))
        if mode == "runtime":
            return self.emit(line, 0x85, 0, 2, 0, self.number(ops[1], line))
        raise _Bad(f"call mode {ops[0]!r}: helper, local or runtime")

    def atomic(self, ops: list[str], line: int) -> None:
        fetch = bool(ops) and ops[0].lower() == "fetch"
        ops = ops[1:] if fetch else ops
        if len(ops) != 3:
            raise _Bad("lock takes [fetch] OP [dst+off], src")
        m = re.match(r"^([a-z]+?)(32|64)?$", ops[0].lower())
        if not m or m.group(1) not in (*_ATOMIC, "xchg", "cmpxchg"):
            raise _Bad(f"unknown atomic operation {ops[0]!r}")
        opcode = 0xC3 if m.group(2) == "32" else 0xDB
        imm = {"xchg": 0xE1, "cmpxchg": 0xF1}.get(m.group(1))
        if imm is None:
            imm = _ATOMIC[m.group(1)] | (1 if fetch else 0)
        dst, off = self.mem(ops[1], line)
        return self.emit(line, opcode, dst, self.reg(ops[2]), off, imm)

    def finish(self) -> tuple[Slot, ...]:
        if "exit" not in self.labels and self.first_exit is not None:
            self.labels["exit"] = self.first_exit  # (the suite's assembler names the first exit so)
        slots = list(self.slots)
        for at, label, fld, line in self.fixups:
            if label not in self.labels:
                self.fail(line, f"no label {label!r}")
                continue
            rel = self.labels[label] - at - 1
            s = slots[at]
            slots[at] = Slot(
                s.opcode,
                s.dst,
                s.src,
                _signed(rel, 16) if fld == "off" else s.off,
                _signed(rel, 32) if fld == "imm" else s.imm,
                s.line,
            )
        return tuple(slots)


class _Bad(Exception):
    pass


def _integer(text: str) -> int:
    """Hexadecimal with 0x (anywhere after a sign), else decimal: as the suite reads numbers."""
    return int(text, 16) if "0x" in text.lower() else int(text, 10)


def parse_data(text: str, path: str) -> Program:
    """A conformance-suite `.data` file."""
    sections: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("--"):
            current = line[2:].strip().lower()
            sections.setdefault(current, [])
            continue
        if current is not None:
            sections[current].append((lineno, line))
    problems: list[Diagnostic] = []
    if ("asm" in sections) == ("raw" in sections):
        raise ProgramError([Diagnostic(path, 1, 1, "a .data file needs exactly one of `-- asm` and `-- raw`")])
    maps: list[MapDef] = []
    for lineno, line in sections.get("map", []):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            if len(fields) != 5:
                raise ValueError("a map is: name type key_size value_size max_entries")
            name, *numbers = fields
            kind, key_size, value_size, entries = (_integer(n) for n in numbers)
            if kind not in (CONST["MAP_HASH"], CONST["MAP_ARRAY"]):
                raise ValueError(f"map type {kind} is not supported (hash 1 and array 2 are)")
            if min(key_size, value_size, entries) < 1 or (kind == CONST["MAP_ARRAY"] and key_size != 4):
                raise ValueError("sizes and max_entries must be positive, and an array's keys are 4 bytes")
            maps.append(MapDef(name, kind, key_size, value_size, entries))
        except ValueError as e:
            problems.append(Diagnostic(path, lineno, 1, str(e)))
    if sum(m.data_size() for m in maps) > MAX_MAP_BYTES:
        problems.append(Diagnostic(path, 1, 1, f"the maps need more than {MAX_MAP_BYTES} bytes"))
    if "asm" in sections:
        asm = _Asm(path, [m.name for m in maps])
        for lineno, line in sections["asm"]:
            try:
                asm.line(line, lineno)
            except _Bad as e:
                asm.fail(lineno, str(e))
        slots = asm.finish()
        problems += asm.problems
    else:
        raw: list[Slot] = []
        for lineno, line in sections["raw"]:
            for word in line.split("#", 1)[0].split():
                try:
                    raw.append(Slot.from_word(_integer(word) & MASK, lineno))
                except ValueError:
                    problems.append(Diagnostic(path, lineno, 1, f"{word!r} is not an instruction word"))
        slots = tuple(raw)
    mem = bytearray()
    for lineno, line in sections.get("mem", []):
        for byte in line.split("#", 1)[0].split():
            try:
                if len(byte) > 2 and not byte.lower().startswith("0x"):
                    raise ValueError
                mem.append(int(byte, 16))
            except ValueError:
                problems.append(Diagnostic(path, lineno, 1, f"{byte!r} is not a hexadecimal byte"))
    result = None
    for lineno, line in sections.get("result", []):
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                result = _integer(text) & MASK
            except ValueError:
                problems.append(Diagnostic(path, lineno, 1, f"{text!r} is not a number"))
    if problems:
        raise ProgramError(problems)
    if not slots:
        raise ProgramError([Diagnostic(path, 1, 1, "the program has no instructions")])
    return Program(path, slots, bytes(mem), result, "error" in sections, 0, tuple(maps))


def parse_elf(blob: bytes, path: str) -> Program:
    """The `.text` of an object from `clang -target bpf -c` (no maps)."""
    import io

    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    def bad(message: str) -> ProgramError:
        return ProgramError([Diagnostic(path, 1, 1, message)])

    try:
        elf = ELFFile(io.BytesIO(blob))
        if elf["e_machine"] != "EM_BPF":
            raise bad(f"an ELF object for {elf['e_machine']}, not for BPF (clang -target bpf)")
        if not elf.little_endian:
            raise bad("a big-endian BPF object (clang -target bpfeb); use -target bpf")
        code = [s for s in elf.iter_sections() if s["sh_flags"] & 0x4 and s.data_size]
        text = next((s for s in code if s.name == ".text"), code[0] if len(code) == 1 else None)
        if text is None:
            names = ", ".join(s.name for s in code) or "none"
            raise bad(f"no single code section to run (code sections: {names})")
        data = text.data()
        slots = [Slot.from_word(struct.unpack_from("<Q", data, k)[0]) for k in range(0, len(data) - 7, 8)]
        index = elf.get_section_index(text.name)
        found = elf.get_section_by_name(".symtab")
        symtab = found if isinstance(found, SymbolTableSection) else None
        for sec in elf.iter_sections():
            if not isinstance(sec, RelocationSection) or sec["sh_info"] != index:
                continue
            for rel in sec.iter_relocations():
                at = rel["r_offset"] // 8
                sym = symtab.get_symbol(rel["r_info_sym"]) if symtab else None
                s = slots[at] if 0 <= at < len(slots) else None
                if s is None or s.opcode != 0x85 or s.src != 1 or sym is None or sym["st_shndx"] != index:
                    what = sym.name if sym is not None and sym.name else "a symbol"
                    raise bad(
                        f"relocation against {what} at .text+{rel['r_offset']:#x}: maps, globals and "
                        "calls outside .text are not supported"
                    )
                # A call to a function in .text: against the function, or the section plus the call's imm.
                dest = sym["st_value"] // 8 if sym.name else (s.imm + 1) + sym["st_value"] // 8
                slots[at] = Slot(s.opcode, s.dst, s.src, s.off, _signed(dest - at - 1, 32))
        entry = 0
        if symtab is not None:
            funcs = [
                sym
                for sym in symtab.iter_symbols()
                if sym["st_info"]["type"] == "STT_FUNC"
                and sym["st_shndx"] == index
                and sym["st_info"]["bind"] == "STB_GLOBAL"
            ]
            if len(funcs) > 1:
                raise bad(f"several global functions in .text ({', '.join(f.name for f in funcs)}): which to run?")
            if funcs:
                entry = funcs[0]["st_value"] // 8
    except ELFError as e:
        raise bad(f"not a readable ELF object: {e}") from None
    if not slots:
        raise bad(".text is empty")
    return Program(path, tuple(slots), entry=entry)


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
    return Program(program.path, program.slots, mem, program.result, program.expects_error, program.entry, program.maps)


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
        forms = BY_OPCODE.get(s.opcode)
        if not forms:
            raise bad(f"unknown opcode {s.opcode:#04x}")
        key = forms[0].field  # (what tells this opcode's ops apart)
        value = s.off if key == "OFF" else s.imm & M32 if key == "IMM" else s.src
        form = next((f for f in forms if f.field == "-" or value == f.value), None)
        if form is None:
            raise bad(f"opcode {s.opcode:#04x} with {key.lower()} {value} is not an instruction")
        kind = _KINDS[form.name]
        if s.dst > 10 or s.src > 10:
            raise bad(f"register r{max(s.dst, s.src)} does not exist (r0 to r10)")
        if (s.dst == 10 and kind.writes_dst) or (s.src == 10 and kind.writes_src):
            raise bad("r10 is read-only")
        imm, target = s.imm, None
        if kind.lddw:
            if k + 1 >= n or slots[k + 1].opcode or slots[k + 1].dst or slots[k + 1].src or slots[k + 1].off:
                raise bad("lddw needs a second slot holding only the upper 32 bits")
            imm = _signed((s.imm & M32) | (slots[k + 1].imm & M32) << 32, 64)
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
    for k, item in enumerate(order):
        if item == "ENTRY":
            out.append(Step("JA", position=program.entry, target=step_of[program.entry]))
        elif item == "TICK":
            out.append(Step("TICK", position=cast(Insn, order[k + 1]).slot))
        elif item == "FELL_OFF":
            out.append(Step("FELL_OFF", position=len(program.slots)))
        else:
            i = cast(Insn, item)
            target = None if i.target is None else step_of[i.target]
            # (registers as byte offsets into the state's r[], the offset biased: template.c's small holes)
            offset = i.off + CONST["OFF_BIAS"]
            out.append(Step(i.op, 8 * i.dst, 8 * i.src, i.slot, target, operand2=offset, operand3=i.imm))
    return out


# -- state ---------------------------------------------------------------------------------


def _mapdefs(program: Program) -> bytes:
    """The maps' descriptors (state.h: MAPDEF_WORDS words each)."""
    words: list[int] = []
    for m, at in zip(program.maps, map_offsets(program.maps), strict=True):
        words += [m.type, m.key_size, m.value_size, m.max_entries, at]
    return struct.pack(f"<{len(words)}Q", *words)


def buffers(program: Program) -> dict[str, bytes]:
    """The input, the stack, the maps' data (zeroed) and their descriptors."""
    return {
        "mem": program.mem,
        "stack": bytes(STACK_SIZE * MAX_FRAMES),
        "maps": bytes(sum(m.data_size() for m in program.maps)),
        "mapdefs": _mapdefs(program),
    }


def make_state(program: Program, addresses: Mapping[str, int]) -> bytes:
    words = [0] * STATE_WORDS

    def put(name: str, value: int, k: int = 0) -> None:
        words[FIELDS[name][0] + k] = value & MASK

    stack_len = STACK_SIZE * MAX_FRAMES
    put("r", addresses["mem"], 1)
    put("r", len(program.mem), 2)
    put("r", addresses["stack"] + stack_len, 10)
    put("mem", addresses["mem"])
    put("mem_len", len(program.mem))
    put("stack", addresses["stack"])
    put("stack_len", stack_len)
    put("maps", addresses["maps"])
    put("maps_len", sum(m.data_size() for m in program.maps))
    put("mapdefs", addresses["mapdefs"])
    put("nmaps", len(program.maps))
    put("budget", CONST["LOOP_BUDGET"])
    return struct.pack(f"<{STATE_WORDS}Q", *words)


def _place(address: int, addresses: Mapping[str, int], sizes: Mapping[str, int]) -> str:
    """An address as engines agree on it: relative to the buffer nearest it."""
    name = min(addresses, key=lambda b: min(abs(address - addresses[b]), abs(address - addresses[b] - sizes[b])))
    rel = address - addresses[name]
    return f"{name}{rel:+#x}"


def _error_message(program: Program, code: int, pc: int, aux: int, aux2: int, where_addr) -> str:
    where = program.where(pc) if pc < len(program.slots) else f"{program.path}: after the last instruction"
    kind = ERRORS.get(code, f"error {code}")
    if kind == "ERR_MEMORY":
        what = f"out-of-bounds access: {aux2} bytes at {where_addr(aux)}"
    elif kind == "ERR_MISALIGNED":
        what = f"misaligned atomic access: {aux2} bytes at {where_addr(aux)}"
    elif kind == "ERR_HELPER":
        what = f"call to unknown helper {aux}"
    elif kind == "ERR_CALL_DEPTH":
        what = f"more than {MAX_FRAMES - 1} nested local calls"
    elif kind == "ERR_RUNTIME_CALL":
        what = f"call to runtime function {aux}: not supported"
    elif kind == "ERR_FELL_OFF":
        what = "ran past the last instruction without exit"
    elif kind == "ERR_BUDGET":
        what = f"more than {CONST['LOOP_BUDGET']:,} trips round loops (does one never end?)"
    elif kind == "ERR_BAD_MAP":
        what = f"a map helper's first argument ({where_addr(aux)}) is not a map"
    else:
        what = kind
    return f"{where}: runtime error: {what}"


def _observed(regs: list[int], where_addr, *memory: bytes) -> tuple[int, ...]:
    """Registers (addresses as places), then the buffers' bytes: what engines must agree on."""
    out: list[int] = []
    for value in regs:
        place = where_addr(value)
        # (a register holding an address inside a buffer is compared as that place)
        out.append(int.from_bytes(place.encode(), "little") << 64 if place is not None else value)
    digests = (int.from_bytes(hashlib.sha256(b).digest()[:16], "little") for b in memory)
    return (*out, *digests)


def outcome(program: Program, state: bytes, contents: Mapping[str, bytes], addresses: Mapping[str, int]) -> Outcome:
    words = struct.unpack(f"<{STATE_WORDS}Q", state)

    def get(name: str, k: int = 0) -> int:
        return words[FIELDS[name][0] + k]

    sizes = {name: len(data) for name, data in contents.items()}
    regs = [get("r", k) for k in range(11)]

    def inside(value: int) -> str | None:
        for name, base in addresses.items():
            if base <= value <= base + sizes[name]:
                return f"{name}{value - base:+#x}"
        return None

    observed = _observed(regs[:10], inside, contents["mem"], contents["stack"], contents["maps"])
    status = get("status")
    if status == CONST["ST_EXITED"]:
        return Outcome(regs[0], None, observed)
    if status == CONST["ST_ERROR"]:
        message = _error_message(
            program, get("error"), get("pc"), get("aux"), get("aux2"), lambda a: _place(a, addresses, sizes)
        )
        return Outcome(None, message, observed)
    raise Rejected(f"{program.path}: the machine stopped with status {status}")


# -- the reference interpreter -------------------------------------------------------------

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
    stride = used + _pad8(mp.key_size) + _pad8(mp.value_size)
    entries = [base + k * stride for k in range(mp.max_entries)]
    wanted = int.from_bytes(key, "little")
    found = next((e for e in entries if m.load(e, 8) and m.load(e + used, mp.key_size) == wanted), None)
    if helper == 1:
        r[0] = found + used + _pad8(mp.key_size) if found is not None else 0
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
        m.store(slot + used + _pad8(mp.key_size), mp.value_size, value)
        r[0] = 0
    else:
        if found is not None:
            m.store(found, 8, 0)
        r[0] = 0 if found is not None else -ENOENT & MASK


def _alu(name: str, a: int, b: int, bits: int) -> int:
    """RFC 9669 section 4.1 on `bits`-bit unsigned operands."""
    m = (1 << bits) - 1
    a, b = a & m, b & m
    sa, sb = _signed(a, bits), _signed(b, bits)
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
    sa, sb = _signed(a, bits), _signed(b, bits)
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
    maps = bytearray(sum(mp.data_size() for mp in program.maps))
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
        observed = _observed([v & MASK for v in r[:10]], inside, bytes(m.mem), bytes(m.stack), bytes(m.maps))
        return Outcome(None if error else r[0] & MASK, error, observed)

    def fail(code: str, at: int, aux: int = 0, aux2: int = 0) -> Outcome:
        message = _error_message(program, CONST[code], at, aux, aux2, lambda a: _place(a, addresses, sizes))
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
                r[i.dst] = _signed(r[i.src], frm) & ((1 << to) - 1)
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
                r[i.dst] = _signed(value, 8 * size) & MASK if op.startswith("LDXS") else value
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


# -- what the command line says ------------------------------------------------------------


def format(outcome: Outcome) -> str:  # (the op set contract's name)
    return f"{outcome.value:#x}" if outcome.value is not None else f"error: {outcome.error}"


def check(program: Program, outcome: Outcome) -> str | None:
    if program.expects_error and outcome.error is None:
        return f"{program.path}: expected a runtime error (-- error), but r0 = {outcome.value:#x}"
    expected = None if program.expects_error or outcome.error is not None else program.result
    if expected is not None and outcome.value != expected:
        return f"{program.path}: r0 = {outcome.value:#x}, but -- result expects {program.result:#x}"
    return None


# -- per-op test programs (jit.opsets.validate) --------------------------------------------

_SPECIAL = (0, 1, -1, 2, 7, 8, 31, 32, 63, 64, 0x7FFFFFFF, -0x80000000, 0x8000, 0xFF)
_SPECIAL64 = (0, 1, MASK, 1 << 63, (1 << 63) - 1, 0xFFFFFFFF, 0x80000000, 0x1_0000_0001, 0xFF00FF00FF00FF00, 63, 64)
_MEMORY_OP = re.compile(r"^(LDX|ST|ATOMIC)")
_SIZE = {"B": 1, "H": 2, "W": 4, "DW": 8, "32": 4, "64": 8}


def _value(rng: random.Random) -> int:
    return rng.choice(_SPECIAL64) if rng.random() < 0.4 else rng.getrandbits(64)


def _lddw(reg: int, value: int) -> list[Slot]:
    return [Slot(LDDW, reg, 0, 0, _signed(value, 32)), Slot(0, 0, 0, 0, _signed(value >> 32, 32))]


def _size(op: str) -> int:
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
            value=_signed(rng.getrandbits(32), 32),
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
        imm = rng.choice(_SPECIAL) if rng.random() < 0.5 else _signed(rng.getrandbits(32), 32)
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
            size = _size(op)
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
