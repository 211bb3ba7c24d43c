"""Disassembly of stencils with capstone, every hole named where it patches."""

from __future__ import annotations

from dataclasses import dataclass

from ..build.stencils import Hole, Stencil
from ..targets import get_target


@dataclass(frozen=True)
class Instruction:
    """One decoded instruction (or undecodable bytes), with the holes that fall in it."""

    address: int
    raw: bytes
    text: str
    holes: tuple[Hole, ...]


def _holes_in(holes: tuple[Hole, ...], start: int, end: int) -> tuple[Hole, ...]:
    return tuple(h for h in holes if start <= h.offset < end)


def _hole_notes(holes: tuple[Hole, ...], start: int, end: int) -> list[str]:
    return [h.describe() for h in _holes_in(holes, start, end)]


def instructions(target: str, code: bytes, holes: tuple[Hole, ...], base: int = 0) -> list[Instruction]:
    """Every instruction of `code` placed at `base`, each with its holes.

    Bytes capstone cannot decode become `.byte` entries, so nothing is
    hidden; a hole that falls in them is still listed.
    """
    md = get_target(target).disassembler
    step = get_target(target).insn_align
    found: list[Instruction] = []
    pos = 0
    while pos < len(code):
        for insn in md.disasm(code[pos:], base + pos):
            off = insn.address - base
            text = f"{insn.mnemonic} {insn.op_str}".strip()
            found.append(
                Instruction(base + off, code[off : off + insn.size], text, _holes_in(holes, off, off + insn.size))
            )
            pos = off + insn.size
        if pos < len(code):
            chunk = code[pos : pos + step]
            text = ".byte " + ", ".join(f"{b:#04x}" for b in chunk)
            found.append(Instruction(base + pos, chunk, text, _holes_in(holes, pos, pos + step)))
            pos += len(chunk)
    return found


def disassemble(target: str, code: bytes, holes: tuple[Hole, ...], base: int = 0) -> list[str]:
    """One line per instruction: offset, bytes, text, then `; hole` for each hole in it."""
    return [
        _line(i.address, i.raw, i.text, [h.describe() for h in i.holes])
        for i in instructions(target, code, holes, base)
    ]


def _line(address: int, raw: bytes, text: str, notes: list[str]) -> str:
    line = f"  {address:04x}: {raw.hex(' '):<30} {text}"
    if notes:
        line = f"{line:<72} ; " + "; ".join(notes)
    return line


def hexdump(data: bytes, holes: tuple[Hole, ...]) -> list[str]:
    lines = []
    for off in range(0, len(data), 8):
        chunk = data[off : off + 8]
        notes = _hole_notes(holes, off, off + 8)
        line = f"  {off:04x}: {chunk.hex(' ')}"
        lines.append(f"{line:<72} ; " + "; ".join(notes) if notes else line)
    return lines


def describe_stencil(target: str, stencil: Stencil) -> str:
    """The human-readable dump used by `python -m jit stencils` and the goldens."""
    out = [f"{stencil.name} ({target}): {len(stencil.code)} bytes of code, {len(stencil.data)} bytes of data"]
    out.append(" code:")
    out += disassemble(target, stencil.code, stencil.holes)
    if stencil.data:
        out.append(" data:")
        out += hexdump(stencil.data, stencil.data_holes)
    for note in stencil.notes:
        out.append(f" note: {note}")
    return "\n".join(out) + "\n"
