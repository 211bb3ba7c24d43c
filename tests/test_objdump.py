"""Our code bytes agree with llvm-objdump on the kept objects.

Where processing changed bytes on purpose (a removed final jump, an inverted
or retargeted branch) the stencil's notes say so, and the test allows exactly
those changes and no others.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from jit.build.library import objects_dir

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


def test_code_agrees_with_llvm_objdump(library, target):
    for stencil in [library.shim, *library.ops.values()]:
        original = objdump_text_bytes(objects_dir(target) / f"{stencil.name}.o", target)
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
