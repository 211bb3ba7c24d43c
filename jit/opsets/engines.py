"""Running an op set's program on every engine.

  py       the op set's reference semantics, in Python
  interp   its C interpreter, built from the same bodies as the stencils
  jit      copy-and-patch: the program's steps stitched from the op set's
           stencils into W^X memory and run here, or (another target)
           under emulation (jit.opsets.emulate)

Each engine allocates the buffers the module asks for, gives the module
their addresses to build the state, runs, and hands back the final state
and buffers; the module turns them into an Outcome.  Everything mapped is
freed before the outcome is returned.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from ..build.stencils import StencilLibrary
from ..codegen.step import Step
from ..errors import JitError
from ..lang.ir import wrap64
from ..targets import host_target, target_name
from . import OpSet, current
from .build import interpreter, library_for
from .model import OpSetModule, Outcome
from .place import place

INST_FIELDS = 7  # op, operand0-3, target, position: the C interpreter's records


class Engine(StrEnum):
    PY = "py"
    INTERP = "interp"
    JIT = "jit"


@dataclass(frozen=True)
class Run:
    outcome: Outcome
    steps: int  # stencil instances (jit) or instruction records (interp)
    compile_seconds: float  # forming + layout + stitching (+ sealing); 0 for interpreters
    run_seconds: float


def check_steps(opset: OpSet, steps: Sequence[Step]) -> None:
    """The module's steps name only the table's ops, jump inside the program,
    and have operands that fit a 64-bit hole (signed or unsigned)."""
    names = set(opset.ops)
    if not steps:
        raise JitError(f"op set {opset.name}: the program has no steps")
    # (All the values at once first, since this is on the compile path (a
    # third quicker); step by step only to name the one that is wrong.)
    values = [v for s in steps for v in (s.operand0, s.operand1, s.operand2, s.operand3, s.position)]
    jumps = [to for s in steps for to in (s.target, s.exit) if to is not None]
    if (
        names.issuperset(s.op for s in steps)
        and min(values) >= -(1 << 63)
        and max(values) < 1 << 64
        and (not jumps or (min(jumps) >= 0 and max(jumps) < len(steps)))
    ):
        return
    for k, s in enumerate(steps):
        if s.op not in names:
            raise JitError(f"op set {opset.name}: step {k} names op {s.op!r}, which its table does not have")
        for n, value in enumerate((s.operand0, s.operand1, s.operand2, s.operand3, s.position)):
            if not -(1 << 63) <= value < 1 << 64:
                what = f"operand{n}" if n < 4 else "position"
                raise JitError(f"op set {opset.name}: step {k} ({s.op}): {what} {value} does not fit 64 bits")
        for what, to in (("target", s.target), ("exit", s.exit)):
            if to is not None and not 0 <= to < len(steps):
                raise JitError(f"op set {opset.name}: step {k} ({s.op}) has {what} {to}, outside 0..{len(steps) - 1}")


def records(opset: OpSet, steps: Sequence[Step]) -> bytes:
    """The steps as the C interpreter reads them."""
    index = {name: k for k, name in enumerate(opset.ops)}
    out = bytearray()
    for s in steps:
        target = -1 if s.target is None else s.target
        fields = (s.operand0, s.operand1, s.operand2, s.operand3, target, s.position)
        out += struct.pack(f"<{INST_FIELDS}q", index[s.op], *(wrap64(v) for v in fields))
    return bytes(out)


@cache
def _ffi():
    from cffi import FFI

    ffi = FFI()
    ffi.cdef("int64_t opset_interpret(void *state, const void *records);")  # (interp.c's entry point)
    return ffi


class _Buffers:
    """The module's buffers in this process's memory, laid out as the
    emulator lays them out (jit.opsets.emulate): in order, each at the start
    of its own BUFFER_STRIDE of address space (the gaps mapped with no
    access), so that an address outside them is described alike (nearest
    buffer and offset) on every engine, and never lands in another buffer.
    Unmapped by close()."""

    def __init__(self, initial: dict[str, bytes]) -> None:
        from ..runtime import memory as m
        from .emulate import BUFFER_STRIDE

        self.sizes = {name: len(data) for name, data in initial.items()}
        biggest = max([*self.sizes.values(), 1])
        self.stride = BUFFER_STRIDE if biggest <= BUFFER_STRIDE // 2 else -(-2 * biggest // m.PAGE) * m.PAGE
        self.span = self.stride * max(1, len(initial))
        base = m.map_pages(self.span, m.PROT_NONE, m.MAP_PRIVATE | m.MAP_ANONYMOUS | m.MAP_NORESERVE)
        self.base, ffi = base, _ffi()
        self.addresses = {name: base + k * self.stride for k, name in enumerate(initial)}
        try:
            for name, data in initial.items():
                pages = -(-max(1, len(data)) // m.PAGE) * m.PAGE
                m.protect(self.addresses[name], pages, m.PROT_READ | m.PROT_WRITE)
                ffi.memmove(ffi.cast("char *", self.addresses[name]), data, len(data))
        except BaseException:
            self.close()
            raise

    def contents(self) -> dict[str, bytes]:
        ffi = _ffi()
        return {name: bytes(ffi.buffer(ffi.cast("char *", self.addresses[name]), n)) for name, n in self.sizes.items()}

    def close(self) -> None:
        if self.base:
            from ..runtime.memory import unmap

            unmap(self.base, self.span)
            self.base = 0


def _state(mod: OpSetModule, program: Any, buffers: _Buffers):
    ffi = _ffi()
    data = mod.make_state(program, buffers.addresses)
    if len(data) != mod.STATE_SIZE:
        raise JitError(f"make_state gave {len(data)} bytes, but STATE_SIZE is {mod.STATE_SIZE}")
    state = ffi.new("char[]", data)
    return state


def _finish(mod: OpSetModule, program: Any, state, buffers: _Buffers) -> Outcome:
    ffi = _ffi()
    return mod.outcome(program, bytes(ffi.buffer(state, mod.STATE_SIZE)), buffers.contents(), buffers.addresses)


def _interpreter(opset: OpSet):
    return _open_interpreter(interpreter(opset), opset.name, opset.interpreter)


@cache
def _open_interpreter(path: Path, name: str, source: str | None):
    """(Cached by the shared object's path, which names its sources' hash.)"""
    ffi = _ffi()
    lib = ffi.dlopen(str(path))
    try:
        return lib.opset_interpret, lib
    except AttributeError:
        raise JitError(f"op set {name}: {source} defines no opset_interpret") from None


def run_interp(opset: OpSet, program: Any, steps: Sequence[Step] | None = None) -> Run:
    opset = current(opset)
    mod = opset.runnable()
    steps = list(mod.steps(program)) if steps is None else list(steps)
    check_steps(opset, steps)
    fn, _lib = _interpreter(opset)
    ffi = _ffi()
    code = ffi.new("char[]", records(opset, steps))
    buffers = _Buffers(mod.buffers(program))
    try:
        state = _state(mod, program, buffers)
        t0 = time.perf_counter()
        fn(state, code)
        elapsed = time.perf_counter() - t0
        outcome = _finish(mod, program, state, buffers)
    finally:
        buffers.close()
    return Run(outcome, len(steps), 0.0, elapsed)


class NativeOpSetRuntime:
    """An op set's stencils for this machine: the shim, sealed once, and compiles into an arena."""

    def __init__(self, opset: OpSet, library: StencilLibrary) -> None:
        from ..runtime.memory import Arena

        self.opset = opset
        self.library = library
        self.arena = Arena()
        shim = self.library.shim
        self.shim_region = self.arena.allocate(len(shim.code))
        self.shim_region.write(0, shim.code)
        self.shim_region.seal()
        self.shim = _ffi().cast("int64_t (*)(void *, void *)", self.shim_region.address)

    def compile(self, steps: Sequence[Step]):
        placed = place(self.library, steps)
        region = self.arena.allocate(placed.layout.size)
        try:
            placed.write(region.view, region.address)  # (written through its view, run where it is)
            region.seal()
        except BaseException:
            region.free()
            raise
        return region


_RUNTIMES: dict[tuple[OpSet, str], NativeOpSetRuntime] = {}


def native_runtime(opset: OpSet) -> NativeOpSetRuntime:
    """The runtime for the op set's current library (a rebuilt one gets a new runtime)."""
    target = host_target()
    if target is None:
        raise JitError("no native target for this machine; use --target to run under emulation")
    library = library_for(opset, target)
    key = (opset, library.key)
    if key not in _RUNTIMES:
        _RUNTIMES[key] = NativeOpSetRuntime(opset, library)
    return _RUNTIMES[key]


def run_native(opset: OpSet, program: Any, steps: Sequence[Step] | None = None) -> Run:
    opset = current(opset)
    mod = opset.runnable()
    rt = native_runtime(opset)
    t0 = time.perf_counter()
    steps = list(mod.steps(program)) if steps is None else list(steps)
    check_steps(opset, steps)
    region = rt.compile(steps)
    compiled = time.perf_counter() - t0
    buffers = None
    try:
        buffers = _Buffers(mod.buffers(program))
        state = _state(mod, program, buffers)
        t1 = time.perf_counter()
        rt.shim(state, _ffi().cast("void *", region.address))
        elapsed = time.perf_counter() - t1
        outcome = _finish(mod, program, state, buffers)
    finally:
        region.free()
        if buffers is not None:
            buffers.close()
    return Run(outcome, len(steps), compiled, elapsed)


def run(opset: OpSet, program: Any, engine: Engine = Engine.JIT, target: str | None = None) -> Run:
    """Run a parsed program on one engine (jit: natively, or emulated when
    `target` is not this machine's)."""
    engine = Engine(engine)
    if engine is Engine.PY:
        t0 = time.perf_counter()
        outcome = opset.runnable().interpret(program)
        return Run(outcome, 0, 0.0, time.perf_counter() - t0)
    if engine is Engine.INTERP:
        return run_interp(opset, program)
    native = host_target()
    target = None if target is None else target_name(target)
    if target is None or target == native:
        return run_native(opset, program)
    from .emulate import run_emulated

    return run_emulated(opset, program, target)
