"""An independent check of the patcher: ld.lld links the same object at the
same addresses, and the bytes must be identical.

For every op on both targets, the stencil is processed without its tail
clean-up (so its bytes are the object's), every hole symbol is defined with
--defsym, and lld links code and read-only data where a linker script says.
Our patch functions, given the same addresses, must produce lld's bytes.
The same runs again with each branch target placed at the very edge of its
relocation's reach, forwards and backwards.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from jit.build.library import load_library, objects_dir
from jit.build.process import process_object
from jit.build.stencils import HoleKind, Stencil
from jit.codegen.patch import patch
from jit.lang.optable import optable
from jit.targets import get_target

LLD = shutil.which("ld.lld-19") or shutil.which("ld.lld")
pytestmark = pytest.mark.skipif(LLD is None, reason="ld.lld (Debian package lld-19) is missing")

TEXT = 0x1_0000_0000
DATA = TEXT + 0x10000
SCRIPT = """SECTIONS {{
  . = {text:#x};
  .text : {{ *(.text) *(.text.*) }}
  . = {data:#x};
  .rodata : {{ *(.rodata) *(.rodata.*) *(.lrodata) *(.lrodata.*) }}
}}
"""
# (forward, backward) reach of each branch relocation, as S + A - P.
REACH = {
    "R_X86_64_PC32": ((1 << 31) - 1, -(1 << 31)),
    "R_X86_64_PLT32": ((1 << 31) - 1, -(1 << 31)),
    "R_AARCH64_JUMP26": ((1 << 27) - 4, -(1 << 27)),
    "R_AARCH64_CALL26": ((1 << 27) - 4, -(1 << 27)),
    "R_AARCH64_CONDBR19": ((1 << 20) - 4, -(1 << 20)),
    "R_AARCH64_TSTBR14": ((1 << 15) - 4, -(1 << 15)),
}


def symbol_values(stencil: Stencil, edge: str | None) -> dict[str, int]:
    """Addresses for every symbol the stencil's holes name."""
    values = {
        "_JIT_OPERAND0": 0x1122_3344_5566_7788,
        "_JIT_OPERAND1": 0xFFFF_FFFF_FFFF_FFF0,
        "_JIT_OPERAND0_X8": 0x7_FFF8,  # (a local's byte offset: 8 times the largest index, MAX_LOCALS)
        "_JIT_OPERAND1_X8": 0x1_2340,
        "_JIT_POSITION": 0x2A,
        "_JIT_CONTINUE": TEXT + 0x2000,
        "_JIT_TARGET": TEXT - 0x3000,
        "_JIT_EXIT": TEXT + 0x4000,
    }
    for h in stencil.holes:
        if h.kind is HoleKind.HELPER:
            values[h.symbol] = TEXT + 0x5000 + 16 * len([v for v in values if v.startswith("_JIT_HELPER")])
    if edge:
        for name in list(values):
            holes = [h for h in stencil.holes if h.symbol == name and h.reloc in REACH]
            if not holes:
                continue
            # As far as the tightest of its holes allows, so every one is in range.
            if edge == "forward":
                values[name] = min(TEXT + h.offset - h.addend + REACH[h.reloc][0] for h in holes)
            else:
                values[name] = max(TEXT + h.offset - h.addend + REACH[h.reloc][1] for h in holes)
    values["_JIT_CONTINUE_ADDR"] = values["_JIT_CONTINUE"]
    return values


def link(tmp: Path, obj: Path, values: dict[str, int]) -> tuple[bytes, bytes, int]:
    script = tmp / "link.ld"
    script.write_text(SCRIPT.format(text=TEXT, data=DATA))
    out = tmp / "linked.elf"
    defs = [f"--defsym={name}={value:#x}" for name, value in values.items()]
    subprocess.run([LLD, "-T", str(script), "-e", "_JIT_ENTRY", "-o", str(out), str(obj), *defs], check=True)
    with out.open("rb") as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name(".text")
        rodata = elf.get_section_by_name(".rodata")
        return text.data(), rodata.data() if rodata else b"", rodata["sh_addr"] if rodata else DATA


def our_bytes(stencil: Stencil, values: dict[str, int], data_base: int) -> tuple[bytes, bytes]:
    code, data = bytearray(stencil.code), bytearray(stencil.data)
    for holes, buf, base in ((stencil.holes, code, TEXT), (stencil.data_holes, data, data_base)):
        for h in holes:
            if h.kind is HoleKind.CODE:
                value = TEXT
            elif h.kind is HoleKind.DATA:
                value = data_base
            else:
                value = values[h.symbol]
            patch(buf, h.offset, h.reloc, value + h.addend, base + h.offset)
    return bytes(code), bytes(data)


@pytest.mark.parametrize("edge", [None, "forward", "backward"])
@pytest.mark.parametrize("target", ["x86_64-linux", "aarch64-linux"])
def test_patcher_matches_lld_for_every_op(tmp_path, target, edge):
    load_library(target)  # the objects come with the library
    compared = 0
    for name in ["shim", *(op.name for op in optable())]:
        obj = objects_dir(target) / f"{name}.o"
        stencil = process_object(obj.read_bytes(), name, get_target(target), clean_tail=False)
        assert not stencil.data_holes, "GOT entries would need lld's GOT too"
        values = symbol_values(stencil, edge)
        lld_code, lld_data, data_base = link(tmp_path, obj, values)
        code, data = our_bytes(stencil, values, data_base)
        assert data == lld_data[: len(data)], name
        assert code == lld_code, f"{name}: ours {code.hex()} lld {lld_code.hex()}"
        compared += len(stencil.holes)
    assert compared > 50
