"""The state the engines hand the stencils, its buffers, and what a final
state means: the result, or the runtime error with the program's file:line."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping

from jit.opsets.model import Outcome, Rejected

from .isa import CONST, ERRORS, FIELDS, MASK, MAX_FRAMES, STACK_SIZE, STATE_WORDS, Program, map_offsets, maps_image


def _mapdefs(program: Program) -> bytes:
    """The maps' descriptors (state.h: MAPDEF_WORDS words each)."""
    words: list[int] = []
    for m, at in zip(program.maps, map_offsets(program.maps), strict=True):
        words += [m.type, m.key_size, m.value_size, m.max_entries, at]
    return struct.pack(f"<{len(words)}Q", *words)


def buffers(program: Program) -> dict[str, bytes]:
    """The input, the stack, the maps' data (as it starts: isa.maps_image) and their descriptors."""
    return {
        "mem": program.mem,
        "stack": bytes(STACK_SIZE * MAX_FRAMES),
        "maps": maps_image(program.maps),
        "mapdefs": _mapdefs(program),
    }


def make_state(program: Program, addresses: Mapping[str, int]) -> bytes:
    words = [0] * STATE_WORDS

    def put(name: str, value: int, k: int = 0) -> None:
        words[FIELDS[name][0] + k] = value & MASK

    stack_len = STACK_SIZE * MAX_FRAMES
    put("r", addresses["mem"], 1)
    put("r", len(program.mem), 2)
    put("r", addresses["stack"] + stack_len, 10)
    put("mem", addresses["mem"])
    put("mem_len", len(program.mem))
    put("stack", addresses["stack"])
    put("stack_len", stack_len)
    put("maps", addresses["maps"])
    put("maps_len", sum(m.data_size() for m in program.maps))
    put("mapdefs", addresses["mapdefs"])
    put("nmaps", len(program.maps))
    put("budget", CONST["LOOP_BUDGET"])
    return struct.pack(f"<{STATE_WORDS}Q", *words)


def place(address: int, addresses: Mapping[str, int], sizes: Mapping[str, int]) -> str:
    """An address as engines agree on it: relative to the buffer nearest it."""
    name = min(addresses, key=lambda b: min(abs(address - addresses[b]), abs(address - addresses[b] - sizes[b])))
    rel = address - addresses[name]
    return f"{name}{rel:+#x}"


def error_message(program: Program, code: int, pc: int, aux: int, aux2: int, where_addr) -> str:
    where = program.where(pc) if pc < len(program.slots) else f"{program.path}: after the last instruction"
    kind = ERRORS.get(code, f"error {code}")
    if kind == "ERR_MEMORY":
        what = f"out-of-bounds access: {aux2} bytes at {where_addr(aux)}"
    elif kind == "ERR_MISALIGNED":
        what = f"misaligned atomic access: {aux2} bytes at {where_addr(aux)}"
    elif kind == "ERR_HELPER":
        what = f"call to unknown helper {aux}"
    elif kind == "ERR_CALL_DEPTH":
        what = f"more than {MAX_FRAMES - 1} nested local calls"
    elif kind == "ERR_RUNTIME_CALL":
        what = f"call to runtime function {aux}: not supported"
    elif kind == "ERR_FELL_OFF":
        what = "ran past the last instruction without exit"
    elif kind == "ERR_BUDGET":
        what = f"more than {CONST['LOOP_BUDGET']:,} trips round loops (does one never end?)"
    elif kind == "ERR_BAD_MAP":
        what = f"a map helper's first argument ({where_addr(aux)}) is not a map"
    else:
        what = kind
    return f"{where}: runtime error: {what}"


def observed_of(regs: list[int], where_addr, *memory: bytes) -> tuple[int, ...]:
    """Registers (addresses as places), then the buffers' bytes: what engines must agree on."""
    out: list[int] = []
    for value in regs:
        place = where_addr(value)
        # (a register holding an address inside a buffer is compared as that place)
        out.append(int.from_bytes(place.encode(), "little") << 64 if place is not None else value)
    digests = (int.from_bytes(hashlib.sha256(b).digest()[:16], "little") for b in memory)
    return (*out, *digests)


def outcome(program: Program, state: bytes, contents: Mapping[str, bytes], addresses: Mapping[str, int]) -> Outcome:
    words = struct.unpack(f"<{STATE_WORDS}Q", state)

    def get(name: str, k: int = 0) -> int:
        return words[FIELDS[name][0] + k]

    sizes = {name: len(data) for name, data in contents.items()}
    regs = [get("r", k) for k in range(11)]

    def inside(value: int) -> str | None:
        for name, base in addresses.items():
            if base <= value <= base + sizes[name]:
                return f"{name}{value - base:+#x}"
        return None

    observed = observed_of(regs[:10], inside, contents["mem"], contents["stack"], contents["maps"])
    status = get("status")
    if status == CONST["ST_EXITED"]:
        return Outcome(regs[0], None, observed)
    if status == CONST["ST_ERROR"]:
        message = error_message(
            program, get("error"), get("pc"), get("aux"), get("aux2"), lambda a: place(a, addresses, sizes)
        )
        return Outcome(None, message, observed)
    raise Rejected(f"{program.path}: the machine stopped with status {status}")
