"""The stencil library: plain data, and its (de)serialisation.

A stencil is machine code plus data, with holes: places the runtime patches
with values known only when a trace is laid out.  A library holds one
stencil per op for one target, plus the entry shim.  It is written as
canonical JSON (sorted keys, fixed layout) so that a rebuild from the same
inputs gives the same bytes, and loads in a few milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

FORMAT_VERSION = 2


class HoleKind(StrEnum):
    """What value fills a hole (the relocation type says how it is encoded)."""

    OPERAND0 = "operand0"  # the instruction's first operand
    OPERAND1 = "operand1"  # its second operand
    OPERAND2 = "operand2"  # its third (op sets with more operands: jit.opsets)
    OPERAND3 = "operand3"  # its fourth
    OPERAND0_X8 = "operand0_x8"  # the first operand times 8 (a local's byte offset)
    OPERAND1_X8 = "operand1_x8"  # the second times 8
    POSITION = "position"  # its IR position
    CONTINUE = "continue"  # code address of the next instruction
    TARGET = "target"  # code address of the jump target / callee
    EXIT = "exit"  # code address of a guard's side exit
    HELPER = "helper"  # address of the helper the symbol names
    CODE = "code"  # this stencil's own code (addend: offset into it)
    DATA = "data"  # this stencil's own data (addend: offset into it)


# The extern symbols templates may use, and what each one means.
HOLE_SYMBOLS: dict[str, HoleKind] = {
    "_JIT_OPERAND0": HoleKind.OPERAND0,
    "_JIT_OPERAND1": HoleKind.OPERAND1,
    "_JIT_OPERAND2": HoleKind.OPERAND2,
    "_JIT_OPERAND3": HoleKind.OPERAND3,
    "_JIT_OPERAND0_X8": HoleKind.OPERAND0_X8,
    "_JIT_OPERAND1_X8": HoleKind.OPERAND1_X8,
    "_JIT_POSITION": HoleKind.POSITION,
    "_JIT_CONTINUE": HoleKind.CONTINUE,
    "_JIT_CONTINUE_ADDR": HoleKind.CONTINUE,
    "_JIT_TARGET": HoleKind.TARGET,
    "_JIT_EXIT": HoleKind.EXIT,
}
HELPER_PREFIX = "_JIT_HELPER_"


@dataclass(frozen=True)
class Hole:
    offset: int  # into the code (or data) the hole belongs to
    reloc: str  # relocation type name, e.g. R_X86_64_64: how to patch
    kind: HoleKind  # what to patch in
    symbol: str  # the symbol the template named ("" for code/data)
    addend: int

    def to_json(self) -> dict:
        return {
            "offset": self.offset,
            "reloc": self.reloc,
            "kind": self.kind.value,
            "symbol": self.symbol,
            "addend": self.addend,
        }

    @classmethod
    def from_json(cls, d: dict) -> Hole:
        return cls(d["offset"], d["reloc"], HoleKind(d["kind"]), d["symbol"], d["addend"])

    def describe(self) -> str:
        """How the dumps name a hole: relocation, then value and addend."""
        what = self.symbol or self.kind.value
        add = f"{self.addend:+#x}" if self.addend else ""
        return f"{self.reloc} {what}{add}"


@dataclass(frozen=True)
class Stencil:
    name: str
    code: bytes
    data: bytes
    holes: tuple[Hole, ...]  # patched in the code
    data_holes: tuple[Hole, ...]  # patched in the data (GOT entries, pointers)
    notes: tuple[str, ...] = ()  # what processing changed on purpose
    object_size: int = 0  # code bytes in the object, before the tail clean-up
    cost: int = 0  # its code's instructions, as the stack-cache choice weighs them (Target.code_cost)

    def to_json(self) -> dict:
        return {
            "object_size": self.object_size,
            "cost": self.cost,
            "code": self.code.hex(),
            "data": self.data.hex(),
            "holes": [h.to_json() for h in self.holes],
            "data_holes": [h.to_json() for h in self.data_holes],
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, name: str, d: dict) -> Stencil:
        return cls(
            name,
            bytes.fromhex(d["code"]),
            bytes.fromhex(d["data"]),
            tuple(Hole.from_json(h) for h in d["holes"]),
            tuple(Hole.from_json(h) for h in d["data_holes"]),
            tuple(d["notes"]),
            d["object_size"],
            d["cost"],
        )


@dataclass(frozen=True)
class StencilLibrary:
    target: str
    key: str  # the cache key: hash of sources, flags, clang and processing code
    clang: str
    flags: tuple[str, ...]
    shim: Stencil
    ops: dict[str, Stencil] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "target": self.target,
            "key": self.key,
            "clang": self.clang,
            "flags": list(self.flags),
            "shim": self.shim.to_json(),
            # A list, so that the op table's order survives sort_keys.
            "ops": [{"name": name, **s.to_json()} for name, s in self.ops.items()],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, d: dict) -> StencilLibrary:
        if d.get("format") != FORMAT_VERSION:
            raise ValueError(f"stencil library format {d.get('format')!r}, expected {FORMAT_VERSION}")
        return cls(
            d["target"],
            d["key"],
            d["clang"],
            tuple(d["flags"]),
            Stencil.from_json("shim", d["shim"]),
            {s["name"]: Stencil.from_json(s["name"], s) for s in d["ops"]},
        )

    @classmethod
    def load(cls, path: Path) -> StencilLibrary:
        """Load a library file; a corrupt one is a ValueError naming the file."""
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: unreadable stencil library ({e})") from e
