"""From one ELF object to one Stencil: layout, holes, GOT, tail clean-up.

Everything an object may contain is accepted explicitly here; anything else
(writable data, .bss, TLS, an unknown relocation, a call to a symbol that is
not a hole) is a StencilBuildError that names the op, the target and the
offending section or relocation.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import NoReturn

from ..errors import StencilBuildError
from ..lang.optable import helper_names
from . import relocs, tail
from .elf import ObjectFile, Relocation, Section, read_object
from .stencils import HELPER_PREFIX, HOLE_SYMBOLS, Hole, HoleKind, Stencil
from .toolchain import Target

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_TLS = 0x400
MAX_DATA_ALIGN = 16

# Sections that carry nothing the runtime needs.
_METADATA_TYPES = {"SHT_NULL", "SHT_SYMTAB", "SHT_STRTAB", "SHT_RELA", "SHT_LLVM_ADDRSIG"}
_METADATA_NAMES = {".note.GNU-stack", ".comment", ".llvm_addrsig"}


@dataclass
class _Layout:
    code: bytearray
    data: bytearray
    code_base: dict[int, int]  # section index -> offset in code
    data_base: dict[int, int]  # section index -> offset in data


def _align(buf: bytearray, align: int, fill: bytes) -> None:
    while len(buf) % align:
        buf += fill


Fail = Callable[[str], NoReturn]  # reports a build error (never returns)


def _layout(obj: ObjectFile, target: Target, fail: Fail) -> _Layout:
    """Code then data, each in section order, except that the section defining
    _JIT_ENTRY comes first (an op set's helper, built with -ffunction-sections,
    may not be its object's first function)."""
    lay = _Layout(bytearray(), bytearray(), {}, {})
    entry = {s.section for s in obj.symbols if s.name == "_JIT_ENTRY" and s.section is not None}
    for sec in sorted(obj.sections, key=lambda s: s.index not in entry):
        if sec.type in _METADATA_TYPES or sec.name in _METADATA_NAMES:
            continue
        if not sec.flags & SHF_ALLOC:
            fail(f"unsupported section {sec.name} ({sec.type}): only code and read-only data may appear")
        if sec.size == 0:
            continue
        what = _forbidden(sec)
        if what:
            fail(f"unsupported section {sec.name}: {what}; stencils may hold only code and read-only data")
        if sec.flags & SHF_EXECINSTR:
            _align(lay.code, sec.align, target.pad)
            lay.code_base[sec.index] = len(lay.code)
            lay.code += sec.data
        else:
            if sec.align > MAX_DATA_ALIGN:
                fail(f"section {sec.name} wants {sec.align}-byte alignment (at most {MAX_DATA_ALIGN})")
            _align(lay.data, sec.align, b"\0")
            lay.data_base[sec.index] = len(lay.data)
            lay.data += sec.data
    return lay


def _forbidden(sec: Section) -> str | None:
    if sec.flags & SHF_TLS:
        return "thread-local storage"
    if sec.type == "SHT_NOBITS":
        return "zero-initialised writable data (.bss)"
    if sec.flags & SHF_WRITE:
        return "writable data"
    if sec.type != "SHT_PROGBITS":
        return f"section type {sec.type}"
    return None


def _check_entry(obj: ObjectFile, lay: _Layout, fail: Fail) -> None:
    entries = [s for s in obj.symbols if s.name == "_JIT_ENTRY" and s.section is not None]
    if not entries:
        fail("the object defines no _JIT_ENTRY")
    entry = entries[0]
    assert entry.section is not None
    where = lay.code_base.get(entry.section)
    if where is None:
        fail("_JIT_ENTRY is not in a code section")
    if where + entry.value != 0:
        fail(f"_JIT_ENTRY is at code offset {where + entry.value:#x}, not at offset 0")


class _Holes:
    """Turns relocations into holes, synthesising GOT entries in the data."""

    def __init__(self, obj: ObjectFile, lay: _Layout, fail: Fail, helpers: Collection[str]) -> None:
        self.obj, self.lay, self.fail, self.helpers = obj, lay, fail, helpers
        self.code: list[Hole] = []
        self.data: list[Hole] = []
        self.got: dict[tuple[HoleKind, str, int], int] = {}

    def value_of(self, rel: Relocation) -> tuple[HoleKind, str, int]:
        """(kind, symbol, addend) for the value a relocation refers to."""
        sym = rel.symbol
        if sym.section is None:
            if sym.name in HOLE_SYMBOLS:
                return HOLE_SYMBOLS[sym.name], sym.name, rel.addend
            if sym.name.startswith(HELPER_PREFIX):
                helper = sym.name[len(HELPER_PREFIX) :]
                if helper not in self.helpers:
                    self.fail(f"{self.where(rel)} names unknown helper {helper!r} (see helpers.h)")
                return HoleKind.HELPER, sym.name, rel.addend
            self.fail(
                f"{self.where(rel)} refers to external symbol {sym.name!r}, which is not a hole; "
                "stencils may only reference _JIT_* symbols"
            )
        if sym.section in self.lay.code_base:
            return HoleKind.CODE, "", self.lay.code_base[sym.section] + sym.value + rel.addend
        if sym.section in self.lay.data_base:
            return HoleKind.DATA, "", self.lay.data_base[sym.section] + sym.value + rel.addend
        self.fail(f"{self.where(rel)} refers to {sym.name or 'a section'} outside code and data")
        raise AssertionError  # fail() raises

    def where(self, rel: Relocation) -> str:
        sec = self.obj.sections[rel.section].name
        name = rel.name or f"{rel.description} (type {rel.type})"
        target = rel.symbol.name or self.obj.sections[rel.symbol.section or 0].name
        return f"relocation {name} at {sec}+{rel.offset:#x} against {target}"

    def got_entry(self, kind: HoleKind, symbol: str, addend: int) -> int:
        key = (kind, symbol, addend)
        if key not in self.got:
            _align(self.lay.data, 8, b"\0")
            self.got[key] = len(self.lay.data)
            self.data.append(Hole(len(self.lay.data), relocs.abs64(self.obj.machine), kind, symbol, addend))
            self.lay.data += bytes(8)
        return self.got[key]

    def add(self, rel: Relocation) -> None:
        if rel.name is None:
            self.fail(f"unsupported {self.where(rel)}")
        if rel.section in self.lay.code_base:
            base, out = self.lay.code_base[rel.section], self.code
        elif rel.section in self.lay.data_base:
            base, out = self.lay.data_base[rel.section], self.data
        else:
            self.fail(f"{self.where(rel)} patches a section that is neither code nor data")
        reloc: str = rel.name
        becomes = relocs.get(reloc).becomes
        if becomes is not None:
            # The GOT entry holds the symbol's address; the instruction keeps
            # its form and now addresses our entry (the addend stays its own).
            sym_rel = Relocation(rel.section, rel.offset, rel.type, rel.name, rel.description, rel.symbol, 0)
            kind, symbol, value = self.value_of(sym_rel)
            entry = self.got_entry(kind, symbol, value)
            out.append(Hole(base + rel.offset, becomes, HoleKind.DATA, "", entry + rel.addend))
            return
        kind, symbol, addend = self.value_of(rel)
        out.append(Hole(base + rel.offset, reloc, kind, symbol, addend))


def process_object(
    blob: bytes,
    name: str,
    target: Target,
    *,
    clean_tail: bool = True,
    split_cold: bool = True,
    helpers: Collection[str] | None = None,
) -> Stencil:
    """Turn the object compiled for op `name` into a Stencil.

    clean_tail=False keeps the object's code bytes as they are (the tests
    link such stencils with ld.lld to check the patcher); split_cold=False
    keeps cold parts in line (the ablation).  helpers: the helpers stencils
    may call (default: the bundled helpers.h's; an op set passes its own)."""

    def fail(what: str) -> NoReturn:
        raise StencilBuildError(name, target.name, what)

    try:
        obj = read_object(blob)
    except ValueError as e:
        fail(str(e))
    if obj.machine != target.elf_machine:
        fail(f"object is for {obj.machine}, expected {target.elf_machine}")
    if obj.rel_sections:
        fail(f"REL relocation sections ({', '.join(obj.rel_sections)}) are not supported")
    lay = _layout(obj, target, fail)
    _check_entry(obj, lay, fail)
    holes = _Holes(obj, lay, fail, helper_names() if helpers is None else helpers)
    for rel in obj.relocations:
        holes.add(rel)
    notes: list[str] = []
    code, code_holes = bytes(lay.code), sorted(holes.code, key=lambda h: h.offset)
    data, data_holes = bytes(lay.data), sorted(holes.data, key=lambda h: h.offset)
    if clean_tail:
        # The cold part out of line first, then the final jump it leaves goes.
        if split_cold:
            code, code_holes, data, data_holes, notes = tail.split_cold(target, code, code_holes, data, data_holes)
        code, code_holes, more = tail.clean_tail(target, code, code_holes)
        notes += more
    cost = target.code_cost(code)
    return Stencil(name, code, data, tuple(code_holes), tuple(data_holes), tuple(notes), len(lay.code), cost)
