"""ELF objects from `clang -target bpf -O2 -c`: the code of `.text`, calls
between its functions resolved, entered at its one global function.

Global data (`.rodata*`, `.data*`, `.bss*`: constant tables, static
variables) becomes what Linux's loader makes of it: one array map per
section (one entry, the section's size, its bytes to start with), and each
64-bit load of an address in it the load of that map value's address
(`lddw` src 2).  Maps declared in the object (`.maps`, `maps`) are not read.
"""

from __future__ import annotations

import struct

from jit.errors import Diagnostic, ProgramError

from .isa import CONST, MAX_MAP_BYTES, MapDef, Program, Slot, pad8, signed

_LDDW, _CALL, _ALLOC, _EXEC = 0x18, 0x85, 0x2, 0x4


def parse_elf(blob: bytes, path: str) -> Program:
    """The `.text` of an object from `clang -target bpf -c`, with its global data."""
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
        relocated = {sec["sh_info"] for sec in elf.iter_sections() if isinstance(sec, RelocationSection)}
        data_maps: dict[int, int] = {}  # a data section's index -> its map's index
        maps: list[MapDef] = []

        def data_map(shndx: object, what: str) -> int | None:
            """The map standing for data section `shndx` (made on first use), or None."""
            if not isinstance(shndx, int) or shndx == index:
                return None
            sec = elf.get_section(shndx)
            name = sec.name
            if not sec["sh_flags"] & _ALLOC or sec["sh_flags"] & _EXEC or name in (".maps", "maps"):
                return None
            if shndx in relocated:
                raise bad(f"{what}: {name} holds addresses to relocate (pointers in global data): not supported")
            if shndx not in data_maps:
                size = max(8, pad8(sec["sh_size"]))
                if size + sum(m.data_size() for m in maps) > MAX_MAP_BYTES:
                    raise bad(f"{what}: the global data needs more than {MAX_MAP_BYTES} bytes")
                init = b"" if sec["sh_type"] == "SHT_NOBITS" else sec.data()
                data_maps[shndx] = len(maps)
                maps.append(MapDef(name, CONST["MAP_ARRAY"], 4, size, 1, init))
            return data_maps[shndx]

        for sec in elf.iter_sections():
            if not isinstance(sec, RelocationSection) or sec["sh_info"] != index:
                continue
            for rel in sec.iter_relocations():
                at = rel["r_offset"] // 8
                sym = symtab.get_symbol(rel["r_info_sym"]) if symtab else None
                s = slots[at] if 0 <= at < len(slots) else None
                where = f".text+{rel['r_offset']:#x}"
                what = sym.name if sym is not None and sym.name else "a symbol"
                if s is not None and sym is not None and s.opcode == _LDDW and s.src == 0 and at + 1 < len(slots):
                    fd = data_map(sym["st_shndx"], f"{where}: {what}")
                    if fd is not None:
                        # the address of the data plus the addend the instruction holds
                        offset = sym["st_value"] + ((s.imm & 0xFFFFFFFF) | (slots[at + 1].imm & 0xFFFFFFFF) << 32)
                        if not 0 <= offset <= maps[fd].value_size:
                            raise bad(f"{where}: an address {offset} bytes into {maps[fd].name}, past its end")
                        slots[at] = Slot(s.opcode, s.dst, 2, s.off, fd)
                        slots[at + 1] = Slot(0, 0, 0, 0, offset)
                        continue
                if s is None or s.opcode != _CALL or s.src != 1 or sym is None or sym["st_shndx"] != index:
                    raise bad(f"relocation against {what} at {where}: maps and calls outside .text are not supported")
                # A call to a function in .text: against the function, or the section plus the call's imm.
                dest = sym["st_value"] // 8 if sym.name else (s.imm + 1) + sym["st_value"] // 8
                slots[at] = Slot(s.opcode, s.dst, s.src, s.off, signed(dest - at - 1, 32))
        entry = 0
        if symtab is not None:
            funcs = [
                sym
                for sym in symtab.iter_symbols()
                if sym["st_info"]["type"] == "STT_FUNC"
                and sym["st_shndx"] == index
                and sym["st_info"]["bind"] == "STB_GLOBAL"
            ]
            # The program is the global function no other one calls (the others are its helpers).
            called = {k + 1 + s.imm for k, s in enumerate(slots) if s.opcode == _CALL and s.src == 1}
            roots = [f for f in funcs if f["st_value"] // 8 not in called] if len(funcs) > 1 else funcs
            if len(roots) > 1:
                names = ", ".join(f.name for f in roots)
                raise bad(f"several global functions in .text that none of the others calls ({names}): which to run?")
            if roots:
                entry = roots[0]["st_value"] // 8
    except ELFError as e:
        raise bad(f"not a readable ELF object: {e}") from None
    if not slots:
        raise bad(".text is empty")
    return Program(path, tuple(slots), entry=entry, maps=tuple(maps))
