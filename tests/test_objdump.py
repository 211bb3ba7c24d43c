"""Our code bytes agree with llvm-objdump on the kept objects.

Where processing changed bytes on purpose (a removed final jump, an inverted
or retargeted branch) the stencil's notes say so, and the test allows exactly
those changes and no others.  Where it split off a cold part (moved into the
data, or a lone jump dropped), the code and the moved part are compared with
the object instruction by instruction: the same instructions in the same
order, where only branches between the parts may differ (their destination
is a hole now, or a short form grew), and the flipped branch the note names.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import capstone
import pytest

from jit.build.library import objects_dir
from jit.targets import get_target

OBJDUMP = shutil.which("llvm-objdump-19") or shutil.which("llvm-objdump")
pytestmark = pytest.mark.skipif(OBJDUMP is None, reason="llvm-objdump (Debian package llvm-19) is missing")
_BYTES_X86 = re.compile(r"^\s*([0-9a-f]+):((?: [0-9a-f]{2})+)(?:\s|$)")
_BYTES_A64 = re.compile(r"^\s*([0-9a-f]+):\s+([0-9a-f]{8})\s")


def objdump_text_bytes(path, target: str) -> bytes:
    """The .text bytes as llvm-objdump -d prints them."""
    out = subprocess.run([OBJDUMP, "-d", "--section=.text", str(path)], capture_output=True, text=True, check=True)
    code = bytearray()
    for line in out.stdout.splitlines():
        if target.startswith("x86"):
            m = _BYTES_X86.match(line)
            if m:
                assert int(m.group(1), 16) == len(code)
                code += bytes.fromhex(m.group(2))
        else:
            m = _BYTES_A64.match(line)
            if m:
                assert int(m.group(1), 16) == len(code)
                code += int(m.group(2), 16).to_bytes(4, "little")  # objdump prints the word
    return bytes(code)


def changed_instructions(notes: tuple[str, ...], target: str) -> set[int]:
    width = 6 if target.startswith("x86") else 4
    spots = set()
    for note in notes:
        m = re.search(r"at (0x[0-9a-f]+)", note)
        if m:
            start = int(m.group(1), 16)
            spots |= set(range(start, start + width))
    return spots


_SPLIT = re.compile(r"at (0x[0-9a-f]+) \((\d+) bytes\)(?: out of line, into the data at (0x[0-9a-f]+))?")


def same_instructions(target: str, ours: bytes, theirs: bytes, where: str) -> None:
    """The same instructions in the same order; only jumps may differ (in
    their destination field, their length, or a flipped condition)."""
    md = get_target(target).disassembler
    a, b = list(md.disasm(ours, 0)), list(md.disasm(theirs, 0))
    assert sum(i.size for i in a) == len(ours) and sum(i.size for i in b) == len(theirs), where
    assert len(a) == len(b), (where, [i.mnemonic for i in a], [i.mnemonic for i in b])
    for x, y in zip(a, b, strict=True):
        if bytes(x.bytes) != bytes(y.bytes):
            assert x.group(capstone.CS_GRP_JUMP) and y.group(capstone.CS_GRP_JUMP), (where, x.mnemonic, y.mnemonic)


def check_split(stencil, original: bytes, target: str) -> None:
    split = next(n for n in stencil.notes if "cold part" in n or "lone jump" in n)
    m = _SPLIT.search(split)
    assert m, split
    cold = len(original) - int(m.group(2))
    removed_last = any(n.startswith("removed the final") for n in stencil.notes)
    flipped = any(n.startswith("flipped") for n in stencil.notes)
    theirs = original[: int(m.group(1), 16)] if removed_last and not flipped else original[:cold]
    same_instructions(target, stencil.code, theirs, f"{stencil.name}: the hot part")
    if m.group(3):
        same_instructions(target, stencil.data[int(m.group(3), 16) :], original[cold:], f"{stencil.name}: cold")


def test_code_agrees_with_llvm_objdump(library, target):
    for stencil in [library.shim, *library.ops.values()]:
        original = objdump_text_bytes(objects_dir(target) / f"{stencil.name}.o", target)
        if any("cold part" in n or "lone jump" in n for n in stencil.notes):
            check_split(stencil, original, target)
            continue
        assert len(stencil.code) <= len(original)
        if not stencil.notes:
            assert stencil.code == original, stencil.name
            continue
        allowed = changed_instructions(stencil.notes, target)
        differ = {i for i, (a, b) in enumerate(zip(stencil.code, original, strict=False)) if a != b}
        assert differ <= allowed, (stencil.name, sorted(differ), stencil.notes)
        removed = len(original) - len(stencil.code)
        said = sum(int(n) for note in stencil.notes for n in re.findall(r"\((\d+) bytes", note))
        assert removed == said, stencil.name
