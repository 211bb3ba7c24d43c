"""Reading one relocatable ELF object into plain data, with pyelftools.

This module only reads; deciding what is allowed in a stencil is
jit.build.process's job.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.descriptions import describe_reloc_type
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from . import relocs


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: str  # pyelftools' sh_type name, e.g. SHT_PROGBITS, or a number
    flags: int
    align: int
    size: int
    data: bytes  # empty for SHT_NOBITS


@dataclass(frozen=True)
class Symbol:
    name: str
    section: int | None  # None: undefined (an external reference)
    value: int
    kind: str  # STT_*
    binding: str  # STB_*


@dataclass(frozen=True)
class Relocation:
    section: int  # index of the section the relocation patches
    offset: int
    type: int
    name: str | None  # None when the type is not in jit.build.relocs
    description: str  # pyelftools' name for the type, for messages
    symbol: Symbol
    addend: int


@dataclass(frozen=True)
class ObjectFile:
    machine: str
    sections: tuple[Section, ...]
    symbols: tuple[Symbol, ...]
    relocations: tuple[Relocation, ...]
    rel_sections: tuple[str, ...]  # SHT_REL sections, which stencils never use


def _symbol(sym) -> Symbol:
    shndx = sym["st_shndx"]
    return Symbol(
        sym.name,
        None if shndx == "SHN_UNDEF" else (shndx if isinstance(shndx, int) else -1),
        sym["st_value"],
        sym["st_info"]["type"],
        sym["st_info"]["bind"],
    )


def read_object(blob: bytes) -> ObjectFile:
    """Parse an ELF relocatable object; raises ValueError if it is not one."""
    try:
        elf = ELFFile(io.BytesIO(blob))
        if elf["e_type"] != "ET_REL":
            raise ValueError(f"not a relocatable object (e_type {elf['e_type']})")
        machine = elf["e_machine"]
        names = {number: row.name for number, row in relocs.by_number(machine).items()}
        sections = []
        for index, sec in enumerate(elf.iter_sections()):
            sections.append(
                Section(
                    index,
                    sec.name,
                    str(sec["sh_type"]),
                    sec["sh_flags"],
                    max(1, sec["sh_addralign"]),
                    sec["sh_size"],
                    b"" if sec["sh_type"] == "SHT_NOBITS" else sec.data(),
                )
            )
        symtab = elf.get_section_by_name(".symtab")
        symbols = tuple(_symbol(s) for s in symtab.iter_symbols()) if isinstance(symtab, SymbolTableSection) else ()
        relocations = []
        rel_sections = []
        for sec in elf.iter_sections():
            if not isinstance(sec, RelocationSection):
                continue
            if not sec.is_RELA():
                rel_sections.append(sec.name)
                continue
            for rel in sec.iter_relocations():
                rtype = rel["r_info_type"]
                relocations.append(
                    Relocation(
                        sec["sh_info"],
                        rel["r_offset"],
                        rtype,
                        names.get(rtype),
                        describe_reloc_type(rtype, elf),
                        symbols[rel["r_info_sym"]],
                        rel["r_addend"],
                    )
                )
    except ELFError as e:
        raise ValueError(f"malformed ELF object: {e}") from e
    return ObjectFile(machine, tuple(sections), symbols, tuple(relocations), tuple(rel_sections))
