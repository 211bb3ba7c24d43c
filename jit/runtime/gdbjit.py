"""GDB's JIT interface: every compiled trace and function shown to gdb as an in-memory ELF object.

For each piece of code (jit.runtime.codeinfo) this writes a small ELF
executable whose .text sits at the code's real address, with

* a symbol for the whole piece (jit:FILE:LINE:loop, ...) and one per step
  (jit:FILE:LINE:stencil), so `disassemble` and `info symbol` name them;
* DWARF (version 4): a compile unit for the .uop file, a subprogram for the
  piece, and a line table from every step's address to its .uop line, so a
  backtrace through JIT code says `at FILE.uop:LINE`.

The object is handed to gdb through GDB's protocol (__jit_debug_descriptor
and __jit_debug_register_code, in stencils/runtime.c) and withdrawn before
its code is freed.  No unwind information is written: gdb finds a JIT
frame from the return address its callee (a C helper) left, which is what
a backtrace from a helper needs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .codeinfo import CodeInfo

# ELF and DWARF numbers, from their specifications.
_ELF_MACHINES = {"x86_64-linux": 62, "aarch64-linux": 183}
_SHT_PROGBITS, _SHT_SYMTAB, _SHT_STRTAB = 1, 2, 3
_SHF_ALLOC, _SHF_EXECINSTR = 0x2, 0x4
_STT_FUNC, _STB_LOCAL, _STB_GLOBAL = 2, 0, 1
_DW_TAG_compile_unit, _DW_TAG_subprogram = 0x11, 0x2E
_DW_AT_name, _DW_AT_stmt_list, _DW_AT_low_pc, _DW_AT_high_pc = 0x03, 0x10, 0x11, 0x12
_DW_AT_language, _DW_AT_comp_dir, _DW_AT_producer = 0x13, 0x1B, 0x25
_DW_FORM_addr, _DW_FORM_data2, _DW_FORM_data8, _DW_FORM_string, _DW_FORM_sec_offset = 0x01, 0x05, 0x07, 0x08, 0x17
_DW_LANG_C99 = 0x0C  # (no DWARF language fits .uop; gdb needs one it knows)
_DW_LNS_copy, _DW_LNS_advance_pc, _DW_LNS_advance_line = 0x01, 0x02, 0x03
_DW_LNE_end_sequence, _DW_LNE_set_address = 0x01, 0x02


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def _debug_abbrev() -> bytes:
    def abbrev(code: int, tag: int, children: bool, attrs: list[tuple[int, int]]) -> bytes:
        pairs = b"".join(_uleb(a) + _uleb(f) for a, f in attrs)
        return _uleb(code) + _uleb(tag) + bytes([children]) + pairs + b"\0\0"

    unit = [
        (_DW_AT_producer, _DW_FORM_string),
        (_DW_AT_language, _DW_FORM_data2),
        (_DW_AT_name, _DW_FORM_string),
        (_DW_AT_comp_dir, _DW_FORM_string),
        (_DW_AT_low_pc, _DW_FORM_addr),
        (_DW_AT_high_pc, _DW_FORM_data8),
        (_DW_AT_stmt_list, _DW_FORM_sec_offset),
    ]
    sub = [(_DW_AT_name, _DW_FORM_string), (_DW_AT_low_pc, _DW_FORM_addr), (_DW_AT_high_pc, _DW_FORM_data8)]
    return abbrev(1, _DW_TAG_compile_unit, True, unit) + abbrev(2, _DW_TAG_subprogram, False, sub) + b"\0"


def _debug_info(info: CodeInfo, directory: str, base: str) -> bytes:
    dies = (
        _uleb(1)
        + b"jit (copy-and-patch)\0"
        + struct.pack("<H", _DW_LANG_C99)
        + base.encode()
        + b"\0"
        + directory.encode()
        + b"\0"
        + struct.pack("<QQI", info.address, info.code_size, 0)
        + _uleb(2)
        + info.name.encode()
        + b"\0"
        + struct.pack("<QQ", info.address, info.code_size)
        + b"\0"  # the end of the unit's children
    )
    header = struct.pack("<HIB", 4, 0, 8)  # version 4, abbrev offset 0, 8-byte addresses
    return struct.pack("<I", len(header) + len(dies)) + header + dies


def _debug_line(info: CodeInfo, directory: str, base: str) -> bytes:
    line_base, line_range, opcode_base = -5, 14, 13
    standard_lengths = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
    tables = directory.encode() + b"\0\0" + base.encode() + b"\0" + _uleb(1) + _uleb(0) + _uleb(0) + b"\0"
    params = struct.pack("<BBBbBB", 1, 1, 1, line_base, line_range, opcode_base) + standard_lengths
    after_header_length = params + tables
    program = bytearray(b"\0" + _uleb(9) + bytes([_DW_LNE_set_address]) + struct.pack("<Q", info.address))
    line, at = 1, 0
    for step in info.steps:
        if step.offset > at:
            program += bytes([_DW_LNS_advance_pc]) + _uleb(step.offset - at)
            at = step.offset
        if step.line != line:
            program += bytes([_DW_LNS_advance_line]) + _sleb(step.line - line)
            line = step.line
        program += bytes([_DW_LNS_copy])
    program += bytes([_DW_LNS_advance_pc]) + _uleb(info.code_size - at)
    program += b"\0" + _uleb(1) + bytes([_DW_LNE_end_sequence])
    rest = struct.pack("<H", 4) + struct.pack("<I", len(after_header_length)) + after_header_length + program
    return struct.pack("<I", len(rest)) + rest


def elf_object(info: CodeInfo, target: str) -> bytes:
    """The in-memory object gdb reads for one piece of code."""
    directory, _, base = info.filename.rpartition("/")
    strtab = bytearray(b"\0")
    symbols = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0)]

    def symbol(name: str, address: int, size: int, binding: int) -> None:
        symbols.append(struct.pack("<IBBHQQ", len(strtab), (binding << 4) | _STT_FUNC, 0, 1, address, size))
        strtab.extend(name.encode() + b"\0")

    for step in info.steps:
        symbol(step.symbol(info.filename), info.address + step.offset, step.size, _STB_LOCAL)
    first_global = len(symbols)
    symbol(info.name, info.address, info.code_size, _STB_GLOBAL)

    sections = [
        _Section(".text", _SHT_PROGBITS, info.code, _SHF_ALLOC | _SHF_EXECINSTR, info.address, align=16),
        _Section(".symtab", _SHT_SYMTAB, b"".join(symbols), link=3, info=first_global, entsize=24, align=8),
        _Section(".strtab", _SHT_STRTAB, bytes(strtab)),
        _Section(".debug_abbrev", _SHT_PROGBITS, _debug_abbrev()),
        _Section(".debug_info", _SHT_PROGBITS, _debug_info(info, directory or ".", base)),
        _Section(".debug_line", _SHT_PROGBITS, _debug_line(info, directory or ".", base)),
    ]
    names = b"\0" + b"".join(s.name.encode() + b"\0" for s in sections) + b".shstrtab\0"
    sections.append(_Section(".shstrtab", _SHT_STRTAB, names))
    body, headers, name_at = bytearray(), bytearray(64), 1  # (section 0: the null section)
    for section in sections:
        body.extend(bytes(-(64 + len(body)) % section.align))
        headers += struct.pack(
            "<IIQQQQIIQQ",
            name_at,
            section.kind,
            section.flags,
            section.address,
            64 + len(body),
            len(section.contents),
            section.link,
            section.info,
            section.align,
            section.entsize,
        )
        body.extend(section.contents)
        name_at += len(section.name) + 1
    body.extend(bytes(-(64 + len(body)) % 8))
    shoff = 64 + len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8  # 64-bit, little-endian, version 1, System V
    elf_header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # ET_EXEC: addresses are where the code is
        _ELF_MACHINES[target],
        1,
        info.address,
        0,
        shoff,
        0,
        64,
        0,
        0,
        64,
        len(sections) + 1,
        len(sections),  # .shstrtab is the last section
    )
    return elf_header + bytes(body) + bytes(headers)


@dataclass(frozen=True)
class _Section:
    name: str
    kind: int
    contents: bytes
    flags: int = 0
    address: int = 0
    link: int = 0
    info: int = 0
    entsize: int = 0
    align: int = 1


@dataclass
class _Entry:
    entry: Any  # cffi's struct jit_code_entry *
    symfile: Any  # the ELF bytes it points at (kept alive with it)


class GdbJit:
    """The registrations of one runtime: register code as it is compiled, withdraw it before it is freed."""

    def __init__(self, target: str) -> None:
        from ..build.hostlib import hostlib

        self.target = target
        self.ffi, self.lib = hostlib()
        self._entries: dict[int, _Entry] = {}

    def add(self, info: CodeInfo) -> None:
        data = elf_object(info, self.target)
        symfile = self.ffi.new("char[]", data)
        entry = self.ffi.new("struct jit_code_entry *")
        entry.symfile_addr = symfile
        entry.symfile_size = len(data)
        self.lib.jit_gdb_register(entry)
        self._entries[info.address] = _Entry(entry, symfile)

    def unregister(self, address: int) -> None:
        found = self._entries.pop(address, None)
        if found is not None:
            self.lib.jit_gdb_unregister(found.entry)

    def close(self) -> None:
        """Withdraw everything (before the code is freed)."""
        for address in list(self._entries):
            self.unregister(address)
