"""ELF objects from `clang -target bpf -O2 -c`: the code of `.text`, calls
between its functions resolved, entered at its one global function."""

from __future__ import annotations

import struct

from jit.errors import Diagnostic, ProgramError

from .isa import Program, Slot, signed


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
            if len(funcs) > 1:
                raise bad(f"several global functions in .text ({', '.join(f.name for f in funcs)}): which to run?")
            if funcs:
                entry = funcs[0]["st_value"] // 8
    except ELFError as e:
        raise bad(f"not a readable ELF object: {e}") from None
    if not slots:
        raise bad(".text is empty")
    return Program(path, tuple(slots), entry=entry)
