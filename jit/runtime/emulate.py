"""Running stitched code for any target under emulation (unicorn).

An x86-64 host can run AArch64 traces, and the x86-64 path itself can run
emulated, to check the emulator against native execution of the same kind
of code.  The emulated machine gets its own address space: the VM state,
the operand stack, frames, program memory and a machine stack are mapped
at fixed addresses; code regions are allocated from a code area.  The C
helpers are served from Python: each has a stub (just a `ret`) whose
execution is hooked, so a stencil's call to print_float lands in Python,
which reads the arguments from the registers the target's C ABI uses.

Writing code into emulated memory drops unicorn's translations of it
(ctl_remove_cache), as an icache flush does on hardware: what runs is what
was patched.  A fault in emulated code is a JitError, never a crash.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from unicorn import UC_HOOK_CODE, Uc, UcError

from ..build.library import load_library
from ..build.stencils import HELPER_PREFIX, StencilLibrary
from ..codegen.emit import Stitcher, plan
from ..codegen.passes import DEFAULT_PASSES
from ..codegen.step import Step
from ..codegen.stitch import Layout
from ..codegen.trace import Handover, TraceShape, program_steps
from ..errors import JitError
from ..lang.interp import Machine
from ..lang.ir import Program, u64, wrap64
from ..lang.optable import helper_names
from ..lang.outcome import ERROR, HALTED, Outcome, Prepared, error_message, format_float
from ..limits import MAX_CALL_DEPTH, MAX_EXITS, NEVER, STACK_SLOTS
from ..targets import TARGETS, get_target
from ..vmdef import FRAME_SIZE, VM_ERROR, VM_HALTED, offset, pack_frame, unpack_frames
from .config import EagerStats
from .interfaces import CompiledCode, FormsThenCompiles

PAGE = 0x1000
HELPERS = 0x0010_0000
SENTINEL = 0x0020_0000
STATE = 0x0030_0000
STRINGS = 0x0040_0000
STRINGS_SIZE = 0x0010_0000
EXIT_COUNTS = 0x0060_0000
NATIVE_STACK = 0x0100_0000
NATIVE_STACK_SIZE = 0x0010_0000
VM_STACK = 0x1000_0000
FRAMES = 0x2000_0000
MEMORY = 0x3000_0000
CODE = 0x4000_0000
CODE_SIZE = 0x0400_0000


class EmulationError(JitError):
    pass


def _round(n: int) -> int:
    return max(PAGE, (n + PAGE - 1) // PAGE * PAGE)


@dataclass
class EmuCode:
    """Stitched code in the emulator (the same interface as jit.runtime.native.Compiled)."""

    emu: Emulator
    base: int
    layout: Layout
    steps: tuple[Step, ...]
    trampolines: int = 0
    chosen: tuple[str, ...] = ()  # each step's stencil (its stack-caching variant)

    @property
    def stencils(self) -> list[str]:
        return list(self.chosen) or [s.op for s in self.steps]

    def address(self, step: int) -> int:
        return self.base + self.layout.code_offsets[step]

    def read(self) -> bytes:
        return bytes(self.emu.uc.mem_read(self.base, self.layout.size))

    def free(self) -> None:
        """Nothing to do: the code area goes with the emulator."""

    def size(self) -> int:
        return self.layout.size


class Emulator(FormsThenCompiles):
    """One emulated machine running one program's VM."""

    def __init__(
        self,
        target: str,
        program: Program,
        args: Sequence[int],
        library: StencilLibrary | None = None,
        stitcher: Stitcher = Stitcher.C,
        stack_cache: bool = True,
    ):
        """stitcher and stack_cache: as for jit.runtime.native.NativeRuntime."""
        if target not in TARGETS:
            raise EmulationError(f"no emulation for target {target!r}; choose one of {', '.join(TARGETS)}")
        self.target, self.abi, self.stitcher = target, TARGETS[target].emulator_abi(), Stitcher(stitcher)
        self.stack_cache = stack_cache
        self.library = library or load_library(target)
        self.program = program
        self.out = bytearray()
        uc = self.uc = Uc(self.abi.arch, self.abi.mode)
        for base, size in (
            (HELPERS, PAGE),
            (SENTINEL, PAGE),
            (STATE, PAGE),
            (STRINGS, STRINGS_SIZE),
            (EXIT_COUNTS, _round(MAX_EXITS * 8)),
            (NATIVE_STACK, NATIVE_STACK_SIZE),
            (VM_STACK, _round(STACK_SLOTS * 8)),
            (FRAMES, _round(MAX_CALL_DEPTH * FRAME_SIZE)),
            (MEMORY, _round(program.memory * 8)),
            (CODE, CODE_SIZE),
        ):
            uc.mem_map(base, size)
        self.helpers: dict[str, int] = {}
        self._helper_at: dict[int, str] = {}
        for k, name in enumerate(helper_names()):
            addr = HELPERS + 16 * k
            uc.mem_write(addr, self.abi.ret)
            self.helpers[HELPER_PREFIX + name] = addr
            self._helper_at[addr] = name
        uc.hook_add(UC_HOOK_CODE, self._on_helper, begin=HELPERS, end=HELPERS + PAGE - 1)
        self._code_top = CODE
        self._fault: BaseException | None = None
        self._write_strings()
        self._init_state(args)
        self.shim = self.load(self.library.shim.code)

    # -- the VM state ------------------------------------------------------------

    def field(self, name: str) -> int:
        return STATE + offset("VMState", name)

    def get(self, name: str) -> int:
        return struct.unpack("<q", self.uc.mem_read(self.field(name), 8))[0]

    def put(self, name: str, value: int) -> None:
        self.uc.mem_write(self.field(name), struct.pack("<Q", u64(value)))

    def _write_strings(self) -> None:
        strings = self.program.strings
        table, lens = STRINGS, STRINGS + 8 * len(strings)
        data = lens + 8 * len(strings)
        if data + sum(len(s) for s in strings) > STRINGS + STRINGS_SIZE:
            raise EmulationError("string literals too large for the emulated machine")
        for k, s in enumerate(strings):
            self.uc.mem_write(table + 8 * k, struct.pack("<Q", data))
            self.uc.mem_write(lens + 8 * k, struct.pack("<q", len(s)))
            self.uc.mem_write(data, s)
            data += len(s)
        self._strings = (table, lens)

    def _init_state(self, args: Sequence[int]) -> None:
        argv = STATE + 0x800
        for k, a in enumerate(args):
            self.uc.mem_write(argv + 8 * k, struct.pack("<q", a))
        for name, value in (
            ("mem", MEMORY),
            ("mem_size", self.program.memory),
            ("stack_limit", VM_STACK + STACK_SLOTS * 8),
            ("frames", FRAMES),
            ("max_depth", MAX_CALL_DEPTH),
            ("args", argv),
            ("nargs", len(args)),
            ("strings", self._strings[0]),
            ("string_lens", self._strings[1]),
            ("exit_counts", EXIT_COUNTS),
            ("fp", VM_STACK),
            ("sp", VM_STACK + 8 * self.program.main.locals),
        ):
            self.put(name, value)

    def slot(self, address: int) -> int:
        return struct.unpack("<q", self.uc.mem_read(address, 8))[0]

    def stack(self) -> list[int]:
        """The live operand stack (locals included), as 64-bit patterns."""
        n = (self.get("sp") - VM_STACK) // 8
        return list(struct.unpack(f"<{n}q", self.uc.mem_read(VM_STACK, 8 * n))) if n else []

    def memory(self) -> list[int]:
        n = self.program.memory
        return list(struct.unpack(f"<{n}q", self.uc.mem_read(MEMORY, 8 * n))) if n else []

    # -- code ----------------------------------------------------------------------

    def load(self, code: bytes) -> int:
        address = self._code_top
        if address + len(code) > CODE + CODE_SIZE:
            raise EmulationError("the emulated code area is full")
        self._code_top = (address + len(code) + 63) // 64 * 64
        self.write_code(address, code)
        return address

    def write_code(self, address: int, code: bytes) -> None:
        self.uc.mem_write(address, code)
        self.uc.ctl_remove_cache(address, address + len(code))

    def compile(self, steps: Sequence[Step]) -> EmuCode:
        planned = plan(self.library, steps, self.helpers, self.stitcher, self.stack_cache)
        address = self._code_top
        code, trampolines = planned.render(address)
        self.load(code)
        return EmuCode(self, address, planned.layout, tuple(steps), trampolines, tuple(planned.stencils()))

    # -- running -------------------------------------------------------------------

    def enter(self, address: int) -> int:
        """Run from `address` through the shim until a stencil returns; the status."""
        self.put("entry", address)
        top = NATIVE_STACK + NATIVE_STACK_SIZE - 64
        if self.abi.link is None:
            top -= 8  # as after a call: the return address is on the stack
            self.uc.mem_write(top, struct.pack("<Q", SENTINEL))
        else:
            self.uc.reg_write(self.abi.link, SENTINEL)
        self.uc.reg_write(self.abi.sp, top)
        self.uc.reg_write(self.abi.args[0], STATE)
        self._fault = None
        try:
            self.uc.emu_start(self.shim, SENTINEL)
        except UcError as e:
            pc = self.uc.reg_read(self.abi.pc)
            raise EmulationError(f"emulated {self.target} code faulted at {pc:#x}: {e}") from e
        if self._fault is not None:
            raise EmulationError(f"helper failed in emulated code: {self._fault}") from self._fault
        return self.get("status")

    def _on_helper(self, uc: Uc, address: int, size: int, _user) -> None:
        name = self._helper_at.get(address)
        if name is None:
            return
        try:
            a1 = uc.reg_read(self.abi.args[1])
            signed = wrap64(a1)
            if name == "print_int":
                self.out += b"%d" % signed
            elif name == "print_float":
                value = struct.unpack("<d", struct.pack("<Q", uc.reg_read(self.abi.fp_arg) & (2**64 - 1)))[0]
                self.out += format_float(value, signed)
            elif name == "print_byte":
                self.out.append(a1 & 0xFF)
            elif name == "print_str":
                self.out += self.program.strings[signed]
            uc.reg_write(self.abi.result, 0)
        except BaseException as e:
            self._fault = e
            uc.emu_stop()

    def outcome(self) -> Outcome:
        status, pc = self.get("status"), self.get("pc")
        if status == VM_HALTED:
            return Outcome(bytes(self.out), HALTED, pc)
        if status != VM_ERROR:
            raise EmulationError(f"the emulated VM stopped with status {status}")
        stack = self.stack()
        message = error_message(self.program, self.get("error"), pc, tuple(stack[-2:]))
        return Outcome(bytes(self.out), ERROR, pc, message)


def prepare_emulated_eager(
    program: Program, args: Sequence[int], target: str, passes: Sequence[str] = DEFAULT_PASSES
) -> Prepared:
    """The whole program compiled up front for `target` (with these
    trace-level passes); calling the result runs it in the emulator."""
    emu = Emulator(target, program, args)
    t0 = time.perf_counter()
    steps = program_steps(program, passes=passes)
    code = emu.compile(steps)
    stats = EagerStats(len(program.code), len(steps), time.perf_counter() - t0)
    return Prepared(lambda: emu.enter(code.address(0)), emu.outcome, stats=stats)


# -- the tier machine under emulation (jit.runtime.interfaces.TierMachine) ----------


class EmuMemory:
    """The program's memory as the Python interpreter sees it: slots in the emulator."""

    def __init__(self, emu: Emulator, size: int) -> None:
        self.emu, self.size = emu, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> int:
        return self.emu.slot(MEMORY + 8 * i)

    def __setitem__(self, i: int, value: int | float) -> None:
        self.emu.uc.mem_write(MEMORY + 8 * i, _pack(value))


def _pack(value: int | float) -> bytes:
    return struct.pack("<d", value) if value.__class__ is float else struct.pack("<q", value)


class EmulatedMachine:
    def __init__(self, program: Program, args: Sequence[int], target: str, hot_loop: int, hot_call: int) -> None:
        self.program = program
        self.emu = Emulator(target, program, args)
        self.library = self.emu.library
        n = len(program.code)
        self.counters, self.call_counters = [hot_loop] * n, [hot_call] * n  # tier 1's, by IR position
        self.py = Machine(program, args, EmuMemory(self.emu, program.memory), self.counters, self.call_counters)
        self.emu.out = self.py.out  # one output, whoever prints
        self.heads: set[int] = set()
        self.in_emulator = False  # where the stack and frames are now

    @property
    def status(self) -> int:
        return self.emu.get("status") if self.in_emulator else self.py.status

    @property
    def pc(self) -> int:
        return self.emu.get("pc") if self.in_emulator else self.py.pc

    exit_index = property(lambda self: self.emu.get("exit_index"))
    trace_ops = property(lambda self: self.emu.get("trace_ops"))
    interp_ops = property(lambda self: self.py.ops)

    def _to_python(self) -> None:
        if not self.in_emulator:
            return
        emu, py = self.emu, self.py
        py.stack[:] = emu.stack()
        py.fp = (emu.get("fp") - VM_STACK) // 8
        depth = emu.get("depth")
        records = unpack_frames(bytes(emu.uc.mem_read(FRAMES, FRAME_SIZE * depth))) if depth else []
        py.frames[:] = [(f["ret_pc"], (f["fp"] - VM_STACK) // 8, f["ret_code"]) for f in records]
        py.status, py.pc, py.error = emu.get("status"), emu.get("pc"), emu.get("error")
        self.in_emulator = False

    def _to_emulator(self) -> None:
        if self.in_emulator:
            return
        emu, py = self.emu, self.py
        if py.stack:
            emu.uc.mem_write(VM_STACK, b"".join(_pack(v) for v in py.stack))
        frames = b"".join(pack_frame(r, code, VM_STACK + 8 * fp) for r, fp, code in py.frames)
        if frames:
            emu.uc.mem_write(FRAMES, frames)
        for name, value in (
            ("sp", VM_STACK + 8 * len(py.stack)),
            ("fp", VM_STACK + 8 * py.fp),
            ("depth", len(py.frames)),
            ("status", 0),
        ):
            emu.put(name, value)
        self.in_emulator = True

    def interpret(self, pc: int) -> int:
        self._to_python()
        return self.py.interpret(pc)

    def record(self, start: int, limit: int) -> list[int]:
        self._to_python()
        return self.py.record(start, limit, self.heads)

    def compile_handover(self, program: Program, handover: Handover) -> tuple[TraceShape, CompiledCode]:
        return self.emu.compile_handover(program, handover)

    def prepare_compiles(self, program: Program) -> None:
        self.emu.prepare(program)

    def enter(self, address: int) -> int:
        self._to_emulator()
        return self.emu.enter(address)

    def link(self, code: CompiledCode, step: int, destination: int) -> None:
        at = code.address(step)
        self.emu.write_code(at, get_target(self.library.target).jump(at, destination))

    def mark_head(self, pc: int, code: CompiledCode) -> None:
        self.heads.add(pc)
        self.counters[pc] = 0

    def settle(self, exit_id: int) -> None:
        pass  # (the controller's own loop drives this machine, and it asks every time)

    def never(self, pc: int) -> None:
        self.counters[pc] = NEVER

    def never_call(self, pc: int) -> None:
        self.call_counters[pc] = NEVER

    def exit_count(self, exit_id: int) -> int:
        return self.emu.slot(EXIT_COUNTS + 8 * exit_id)

    def outcome(self) -> Outcome:
        self._to_python()
        return self.py.outcome()

    def close(self) -> None:
        pass
