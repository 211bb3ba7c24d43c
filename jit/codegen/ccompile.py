"""A compile from what tier 1 hands over to stitched code, in C (stencils/compile.c).

Forming (stencils/form.c), the stack-cache choice, layout and stitching
(stencils/stitch.c) run back to back over one CompileJob, whose scratch is
kept from compile to compile.  compile() is one C call: it forms, takes the
code's bytes from the arena's open run (jit.runtime.memory, dual mapping)
and stitches there, and what the compile leaves behind (the formed steps
and the stencils chosen, for listings; the exits; the offsets linking
needs) comes back as one malloc'd record, read only when something looks
at it (RecordShape, and jit.runtime.native's code object).  Without a run
(no dual mapping) it is two calls: form() says how big the code is, the
caller allocates that much, and stitch() fills it.  Nothing is made per step.

jit.codegen.cform and jit.codegen.cstitch call the same stages one at a
time, and jit.codegen.trace and jit.codegen.stitch stay the readable
reference; tests/test_ccompile.py requires the same steps, exits and bytes
as those.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from ..lang.ir import Program
from .cform import KIND_NUMBERS, REGISTER_SCRATCH, STEP_FIELDS, PackedExits, PackedSteps, former, outside, path_array
from .cstitch import Plans
from .passes import formed_in_c
from .step import Step
from .stitch import Layout, StitchError
from .trace import FUNCTION, ExitInfo, Handover, TraceKind, TraceShape

_KINDS = {number: TraceKind(name) for name, number in KIND_NUMBERS.items()}
_KIND_OF = {kind: KIND_NUMBERS[kind.value] for kind in TraceKind if kind.value in KIND_NUMBERS}
_ARGS = struct.Struct("9q")  # jit_compile's args (vm.h)


def record_parts(
    words: memoryview, n: int, width: int, start: int, ops: int, kind: int
) -> tuple[TraceShape, memoryview, memoryview, memoryview]:
    """What a compile's record holds after its header (jit_compile_stitch
    copies it): the shape (the formed steps and the exits), the stencil
    each step was stitched from (an op number), code_at and data_at."""
    steps_end = STEP_FIELDS * n
    chosen_end, code_end = steps_end + n, steps_end + 2 * n + 1
    shape = TraceShape(
        start,
        PackedSteps(words[:steps_end], n),
        PackedExits(words[code_end + n :], width),
        ops,
        FUNCTION if kind < 0 else _KINDS[kind],
    )
    return shape, words[steps_end:chosen_end], words[chosen_end:code_end], words[code_end : code_end + n]


class CCompiler:
    """One job: a library's plans, the helpers' addresses and whether to
    cache the stack, kept; per handover, forming's switches."""

    def __init__(self, plans: Plans, helper_values: Any, stack_cache: bool) -> None:
        self.former = former()
        self.plans = plans
        ffi = self.ffi = plans.ffi
        self.lib = plans.lib
        job = self.job = ffi.new("CompileJob *")
        job.ops, job.plans = self.former.ops, plans.plans
        job.table = plans.table_pointer if stack_cache else ffi.NULL
        job.helpers, job.target = helper_values, plans.target
        job.is_label, job.ends_block = self.former.is_label, self.former.ends_block
        self.error = ffi.new("char[]", 200)
        job.error, job.error_size = self.error, 200
        self._keep = helper_values  # (the job points into it)
        self._made = (0, 0)  # the last path's (or function's) first position and length, for its shape
        self._switches = (-1, -1, -1)  # the job's superinstructions, accounting and registers
        self._args_buffer = bytearray(_ARGS.size)  # (jit_compile reads it where it is)
        self._args = ffi.from_buffer("int64_t[]", self._args_buffer)
        self._cap = 0
        self._grow(64)
        self._tramp_room(0)  # (grown to what a layout asks for)

    def _grow(self, cap: int) -> None:
        """Scratch for `cap` steps (vm.h says what each array needs)."""
        ffi, job = self.ffi, self.job
        arrays = {
            "formed": ("StepPlan[]", cap),
            "chosen": ("StepPlan[]", cap),
            "exits": ("int64_t[]", 5 * cap),
            "code_at": ("int64_t[]", cap + 1),
            "data_at": ("int64_t[]", cap),
            "stubs": ("int64_t[]", 3 * cap),
            "index": ("int64_t[]", cap),
            "blen": ("int64_t[]", cap),
            "where": ("int64_t[]", cap + 1),
            "entry": ("uint8_t[]", cap + 1),
            "leader": ("uint8_t[]", cap + 1),
            "regs": ("int64_t[]", REGISTER_SCRATCH * (cap + 1)),
        }
        self._scratch = {name: ffi.new(ctype, n) for name, (ctype, n) in arrays.items()}
        for name, buffer in self._scratch.items():
            setattr(job, name, buffer)
        job.cap = self._cap = cap

    def _tramp_room(self, slots: int) -> None:
        self._tramp = self.ffi.new("uint64_t[]", slots)
        self.job.tramp_dest, self.job.tramp_room = self._tramp, slots

    def _path(self, program: Program, h: Handover) -> tuple[Any, int, int, int]:
        """The path (an int64 array), its length, its kind's number and the
        end of a whole function (-1 for a path); the scratch grown to fit
        and the job's switches set.  Remembers the first position and length."""
        if h.kind is FUNCTION:
            func = next((f for f in program.functions if f.start == h.stop_pc), None)
            if func is None:
                raise ValueError(f"no function starts at {h.stop_pc}")
            n, pcs, npcs, kind, end = func.end - func.start, path_array(()), 0, 0, func.end
            self._made = (func.start, n)
        else:
            pcs = path_array(h.pcs)
            n = npcs = len(h.pcs)
            kind, end = _KIND_OF[h.kind], -1
            self._made = (h.pcs[0] if n else h.stop_pc, n)
        if not formed_in_c(h.passes):
            raise ValueError(f"form.c does not run the passes {', '.join(h.passes)}")
        self._fit(n, h.superinstructions, h.accounting, bool(h.passes))
        return pcs, npcs, kind, end

    def _fit(self, n: int, superinstructions: bool, accounting: bool, registers: bool) -> None:
        """Scratch for a path or function of n positions, and the job's switches set."""
        room = self.lib.jit_form_room(n, registers)
        if room > self._cap:
            self._grow(max(room, 2 * self._cap))
        switches = (superinstructions, accounting, registers)
        if switches != self._switches:
            self._switches = switches
            self.job.superinstructions, self.job.accounting, self.job.registers = switches

    def ready(
        self, program: Program, superinstructions: bool, accounting: bool, registers: bool, max_steps: int
    ) -> int:
        """Set the job up for compiles the loop between the tiers makes
        itself (stencils/tiers.c) of paths up to `max_steps` long: the
        switches set and the scratch grown.  The address of the program's
        code as forming reads it."""
        self._fit(max_steps, superinstructions, accounting, registers)
        return self.former.code(program)[2]

    def arguments(self, program: Program, handover: Handover) -> tuple[tuple[int, ...], tuple[int, int], Any]:
        """jit_compile's nine arguments for this handover, the path's first
        position and length, and the path's array the arguments point into
        (to be kept while they are used).  Sets the job up for it (_path)."""
        h = handover
        pcs, npcs, kind, end = self._path(program, h)
        code = self.former.code(program)[2]
        link = h.link_address or 0
        args = (code, len(program.code), pcs.buffer_info()[0], npcs, h.stop_pc, kind, h.first_exit, link, end)
        return args, self._made, pcs

    def form(self, program: Program, handover: Handover) -> int:
        """Form, choose variants and lay out: the size the code needs."""
        h = handover
        pcs, npcs, kind, end = self._path(program, h)
        code, ncode = self.former.code(program)[0], len(program.code)
        size = self.lib.jit_compile_form(
            self.job, code, ncode, self.ffi.from_buffer("int64_t[]", pcs), npcs, h.stop_pc, kind, h.first_exit,
            h.link_address or 0, end,
        )  # fmt: skip
        if size == -2:
            raise outside(program)
        if size < 0:
            raise AssertionError("the compile job was given too little room")  # (_path grows what it asks for)
        return size

    def compile(self, program: Program, handover: Handover, arena: Any) -> RecordShape | None:
        """Compile in one C call, into `arena`'s open run (refilled when it
        has no room): the shape, which reads the compile's record, or None
        when the arena can no longer give a run (then form() and stitch()
        into a region of its own)."""
        run = arena.code_run()
        if run is None:
            return None
        args, _, _alive = self.arguments(program, handover)  # (the path stays alive while C reads it)
        _ARGS.pack_into(self._args_buffer, 0, *args)
        lib, job = self.lib, self.job
        while True:
            record = lib.jit_compile(job, run, self._args)
            if record:
                return RecordShape(self, self.ffi.gc(record, lib.jit_record_free), *self._made)
            if not self.recover(run, arena, program):
                return None

    def recover(self, run: Any, arena: Any, program: Program) -> bool:
        """After a jit_compile that returned NULL (run.status says why): make
        the room it wanted, to try again; False when the arena can no
        longer give a run.  A compile that cannot succeed raises."""
        lib, status = self.lib, run.status
        if status == lib.JIT_COMPILE_RUN:
            return bool(arena.refill(run.need))
        if status == lib.JIT_COMPILE_TRAMPS:
            self._tramp_room(max(self.job.tramp_slots, 2 * self.job.tramp_room))
            return True
        if status == lib.JIT_COMPILE_OUTSIDE:
            raise outside(program)
        if status == lib.JIT_COMPILE_STITCH:
            raise StitchError(self.ffi.string(self.error).decode())
        if status == lib.JIT_COMPILE_MEMORY:
            raise MemoryError("no memory for a compile's record")
        raise AssertionError("the compile job was given too little room")  # (JIT_COMPILE_SCRATCH: _path grows it)

    def stitch(self, out: int, base: int) -> tuple[int, memoryview]:
        """Stitch what form() made into writable memory at `out` (as if at
        `base`) and flush the instruction cache at `base`: the trampolines
        used, and the compile's record (what results() reads)."""
        ffi, job = self.ffi, self.job
        if job.tramp_slots > job.tramp_room:
            self._tramp_room(max(job.tramp_slots, 2 * job.tramp_room))
        record = bytearray(8 * self.lib.jit_record_words(job))
        used = self.lib.jit_compile_stitch(job, out, base, ffi.from_buffer("int64_t[]", record, require_writable=True))
        if used < 0:
            raise StitchError(ffi.string(self.error).decode())
        return used, memoryview(record).cast("q")

    def results(self, record: memoryview) -> tuple[TraceShape, memoryview, Layout]:
        """What the compile left behind, from its record: the shape (the
        formed steps and the exits), the steps as stitched, and the layout."""
        job = self.job
        start, ops = self._made
        shape, chosen, code_at, data_at = record_parts(record, job.nsteps, job.exit_width, start, ops, job.kind)
        return shape, chosen, Layout(code_at, job.tramp_at, job.tramp_slots, data_at, job.size)


class RecordShape(TraceShape):
    """What jit_compile left behind (a RecordHeader, then the arrays
    record_parts reads), as the compile's shape: its steps and exits, and
    the code's layout and stencils, are read from the record when first
    asked for.  A compile's Python is then what the code needs to run (the
    tiered engine asks only how many steps and exits there are), and most
    compiles are never listed.  The record is freed with the last object
    reading it."""

    def __init__(self, compiler: CCompiler, pointer: Any, start: int, ops: int) -> None:
        # (not the dataclass's __init__: no field is read yet)
        self.compiler, self.pointer, self.start_pc, self.ops, self.handover = compiler, pointer, start, ops, None
        self._parts: tuple[TraceShape, memoryview, Layout] | None = None

    def parts(self) -> tuple[TraceShape, memoryview, Layout]:
        """The shape as a plain TraceShape, the stencils as op numbers, and the layout."""
        if self._parts is None:
            ffi = self.compiler.ffi
            h = ffi.cast("RecordHeader *", self.pointer)
            head = ffi.sizeof("RecordHeader")
            words = memoryview(ffi.buffer(self.pointer, head + 8 * h.words)).cast("q")[head // 8 :]  # (keeps it alive)
            shape, chosen, code_at, data_at = record_parts(
                words, h.nsteps, h.exit_width, self.start_pc, self.ops, h.kind
            )
            self._parts = shape, chosen, Layout(code_at, h.tramp_at, h.tramp_slots, data_at, h.size)
        return self._parts

    def stencils(self) -> list[str]:
        """The stencil each step was stitched from."""
        return self.compiler.plans.stencil_names(self.parts()[1])

    def counts(self) -> tuple[int, int]:
        h = self.pointer  # (a RecordHeader's third and fourth fields, read without the record's parts)
        return h[2], h[3]

    @property
    def steps(self) -> Sequence[Step]:  # type: ignore[override]  # (a field of the base, read from the record here)
        return self.parts()[0].steps

    @property
    def exits(self) -> Mapping[int, ExitInfo]:  # type: ignore[override]  # (a field of the base, read from the record here)
        return self.parts()[0].exits

    @property
    def kind(self) -> TraceKind:  # type: ignore[override]  # (a field of the base, read from the record here)
        return self.parts()[0].kind
