"""The `.data` text format of the eBPF conformance suite (and of uBPF and
rbpf): `-- asm` (assembly, as the suite's assembler reads it), `-- raw`
(64-bit instruction words), `-- mem` (the input buffer, hex bytes),
`-- result` (the expected r0), `-- error` (the run must fail) and `-- map`
(maps); other sections are ignored.
"""

from __future__ import annotations

import re

from jit.errors import Diagnostic, ProgramError

from .isa import BY_NAME, CONST, HELPERS_BY_NAME, LDDW, M32, MASK, MAX_MAP_BYTES, MapDef, Program, Slot, signed

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
        self.slots.append(Slot(opcode, dst, src, signed(off, 16), signed(imm, 32), line))

    def target(self, text: str, line: int, field: str) -> int:
        """A jump's offset: +N/-N or a bare N as written, or a label's (fixed up at the end)."""
        t = text.strip()
        if t[:1] in "+-" or t[:1].isdigit():
            return self.number(t, line)
        if not re.match(r"^[A-Za-z_.][\w.]*$", t):
            raise _Bad(f"{text!r} is neither a label nor an offset like +2 or 2")
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
                signed(rel, 16) if fld == "off" else s.off,
                signed(rel, 32) if fld == "imm" else s.imm,
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
    # As the suite's parser: instruction words in `-- raw` win over `-- asm`
    # (files keep the assembly they were made from there, as comments).
    raw_words = [(n, w) for n, line in sections.get("raw", []) for w in line.split("#", 1)[0].split()]
    if "asm" not in sections and "raw" not in sections:
        raise ProgramError([Diagnostic(path, 1, 1, "a .data file needs an `-- asm` or a `-- raw` section")])
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
    if not raw_words and "asm" in sections:
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
        for lineno, word in raw_words:
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
