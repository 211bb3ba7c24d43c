"""The VM's constants and struct layouts, read from stencils/vm.h (their one definition).

vm.h's enums give the status and error codes, the hole kinds the C
stitcher numbers, the stack-caching table's layout and the architectures;
its structs give the field order.  Every field of the structs the stencils,
the interpreters, the runtime and the emulator share is 64 bits wide (vm.h
says so, and the emulator maps one layout for either target), so a field's
offset is 8 times its index.  This is read as text, with no C compiler and
no cffi, so that the pure-Python parts (the reference interpreter among
them) can use it.
"""

from __future__ import annotations

import re
import struct
from functools import cache

from .paths import STENCILS_DIR

_CONSTANT = re.compile(r"^\s*([A-Z][A-Z0-9_]*)\s*=\s*(-?\d+)\s*,", re.M)
_STRUCT = re.compile(r"typedef struct (\w+) \{(.*?)\} \1;", re.S)
_FIELD = re.compile(r"(\w+)(?:\[\w*\])?\s*;")
SLOT = 8  # bytes in every field and every stack slot


@cache
def _text() -> str:
    return (STENCILS_DIR / "vm.h").read_text()


@cache
def constants() -> dict[str, int]:
    """Every `NAME = value,` enum member in vm.h."""
    return {name: int(value) for name, value in _CONSTANT.findall(_text())}


def constant(name: str) -> int:
    try:
        return constants()[name]
    except KeyError:
        raise KeyError(f"stencils/vm.h defines no constant {name}") from None


@cache
def fields(struct: str) -> tuple[str, ...]:
    """The field names of `typedef struct NAME {...} NAME;`, in order."""
    for name, body in _STRUCT.findall(_text()):
        if name == struct:
            body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
            return tuple(_FIELD.findall(body))
    raise KeyError(f"stencils/vm.h defines no struct {struct}")


def offset(struct: str, field: str) -> int:
    return SLOT * fields(struct).index(field)


def size(struct: str) -> int:
    return SLOT * len(fields(struct))


# The names the rest of the package uses.
VM_RUNNING = constant("VM_RUNNING")
VM_HALTED = constant("VM_HALTED")
VM_ERROR = constant("VM_ERROR")
VM_EXITED = constant("VM_EXITED")
VM_HOT = constant("VM_HOT")
VM_RECORDED = constant("VM_RECORDED")
VM_HOT_CALL = constant("VM_HOT_CALL")
VM_EXIT_HOT = constant("VM_EXIT_HOT")
VM_HOT_RECORDED = constant("VM_HOT_RECORDED")
ERR_DIV_ZERO = constant("VM_ERR_DIV_ZERO")
ERR_MEM_RANGE = constant("VM_ERR_MEM_RANGE")
ERR_CALL_DEPTH = constant("VM_ERR_CALL_DEPTH")
ERR_STACK_OVERFLOW = constant("VM_ERR_STACK_OVERFLOW")
ERR_OUTPUT = constant("VM_ERR_OUTPUT")
FRAME_SIZE = size("Frame")
TRAMPOLINE_SIZE = constant("TRAMPOLINE_SIZE")
DATA_ALIGN = constant("DATA_ALIGN")


def pack_frame(ret_pc: int, ret_code: int, fp: int) -> bytes:
    """A Frame record's bytes, its fields in vm.h's order (the emulator's frames)."""
    values = {"ret_pc": ret_pc, "ret_code": ret_code, "fp": fp}
    return struct.pack(f"<{len(values)}q", *(values[name] for name in fields("Frame")))


def unpack_frames(data: bytes) -> list[dict[str, int]]:
    """Frame records from their bytes, each as {field: value}."""
    names = fields("Frame")
    raw = struct.unpack(f"<{len(data) // SLOT}q", data)
    return [dict(zip(names, raw[k : k + len(names)], strict=True)) for k in range(0, len(raw), len(names))]
