"""Running a program on the C interpreters (switch or tail-call dispatch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..build.hostlib import hostlib
from ..lang.ir import Program
from ..lang.outcome import ERROR, HALTED, Outcome, Prepared, error_message
from ..limits import MAX_CALL_DEPTH, STACK_SLOTS
from ..vmdef import VM_ERROR, VM_HALTED

_ALLOCATORS: dict[int, object] = {}


def _uncleared(ffi):
    key = id(ffi)
    if key not in _ALLOCATORS:
        _ALLOCATORS[key] = ffi.new_allocator(should_clear_after_alloc=False)
    return _ALLOCATORS[key]


@dataclass
class NativeVM:
    """A VMState with its stack, frames, memory, arguments and strings.

    cffi frees every buffer when this object goes; the output buffer, which
    the helpers grow with realloc, is freed by close().
    """

    program: Program
    ffi: Any  # cffi's handles carry no static types
    lib: Any
    state: Any
    stack: Any
    keep: list

    @classmethod
    def create(cls, program: Program, args: Sequence[int]) -> NativeVM:
        ffi, lib = hostlib()
        # Stack and frames are written before they are read (the verifier
        # sees to the stack, CALL to frames), so they need no clearing.
        stack = _uncleared(ffi)("Slot[]", STACK_SLOTS)
        frames = _uncleared(ffi)("Frame[]", MAX_CALL_DEPTH)
        for k in range(program.main.locals):
            stack[k].i = 0
        memory = ffi.new("Slot[]", max(1, program.memory))
        argv = ffi.new("int64_t[]", list(args) or [0])
        texts = [ffi.new("char[]", s) for s in program.strings]
        strings = ffi.new("char *[]", texts or [ffi.NULL])
        lens = ffi.new("int64_t[]", [len(s) for s in program.strings] or [0])
        state = ffi.new("VMState *")
        state.mem, state.mem_size = memory, program.memory
        state.stack_limit = stack + STACK_SLOTS
        state.frames, state.max_depth = frames, MAX_CALL_DEPTH
        state.args, state.nargs = argv, len(args)
        state.strings, state.string_lens = strings, lens
        state.fp = stack
        state.sp = stack + program.main.locals
        return cls(program, ffi, lib, state, stack, [frames, memory, argv, texts, strings, lens])

    def output(self) -> bytes:
        return bytes(self.ffi.buffer(self.state.out, self.state.out_len)) if self.state.out_len else b""

    def outcome(self) -> Outcome:
        st = self.state
        out = self.output()
        if st.status == VM_HALTED:
            return Outcome(out, HALTED, st.pc)
        if st.status != VM_ERROR:
            raise RuntimeError(f"the VM stopped with status {st.status}")
        depth = st.sp - self.stack
        top = tuple(st.sp[k].i for k in range(-min(depth, 2), 0))
        return Outcome(out, ERROR, st.pc, error_message(self.program, st.error, st.pc, top))

    def close(self) -> None:
        self.lib.vm_free_output(self.state)


def encode(program: Program, ffi) -> object:
    code = ffi.new("Inst[]", len(program.code))
    for i, ins in enumerate(program.code):
        code[i].op, code[i].a, code[i].b = ins.op, ins.a, ins.b
    return code


def prepare_c(program: Program, args: Sequence[int], engine: str = "switch") -> Prepared:
    """Set up a run; calling the result runs it (once) and frees the output."""
    vm = NativeVM.create(program, args)
    code = encode(program, vm.ffi)
    entry = {"switch": vm.lib.run_switch, "tailcall": vm.lib.run_tailcall}[engine]
    return Prepared(lambda: entry(vm.state, code, 0), vm.outcome, vm.close)


def run_c(program: Program, args: Sequence[int], engine: str = "switch") -> Outcome:
    return prepare_c(program, args, engine)()
