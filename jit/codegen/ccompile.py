"""A compile from what tier 1 hands over to stitched code, in two C calls (stencils/compile.c).

Forming (stencils/form.c), the stack-cache choice, layout and stitching
(stencils/stitch.c) run back to back over one CompileJob, whose scratch is
kept from compile to compile: the first call forms and lays out and says
how big the code is, the caller allocates that much, and the second call
stitches into it.  Nothing is made per step; what the compile leaves behind
(the formed steps and the stencils chosen, for listings; the exits; the
offsets linking needs) the second call copies into one record, which the
compiled code's objects read as views.

jit.codegen.cform and jit.codegen.cstitch call the same stages one at a
time, and jit.codegen.trace and jit.codegen.stitch stay the readable
reference; tests/test_ccompile.py requires the same steps, exits and bytes
as those.
"""

from __future__ import annotations

from typing import Any

from ..lang.ir import Program
from .cform import KIND_NUMBERS, STEP_FIELDS, PackedExits, PackedSteps, former, outside, path_array
from .cstitch import Plans
from .stitch import Layout, StitchError
from .trace import FUNCTION, Handover, TraceKind, TraceShape

_KINDS = {number: TraceKind(name) for name, number in KIND_NUMBERS.items()}


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
        self._made = (0, 0)  # the last form()'s first position and length, for its shape
        self._switches = (-1, -1)  # the job's superinstructions and accounting
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
        }
        self._scratch = {name: ffi.new(ctype, n) for name, (ctype, n) in arrays.items()}
        for name, buffer in self._scratch.items():
            setattr(job, name, buffer)
        job.cap = cap

    def _tramp_room(self, slots: int) -> None:
        self._tramp = self.ffi.new("uint64_t[]", slots)
        self.job.tramp_dest, self.job.tramp_room = self._tramp, slots

    def form(self, program: Program, handover: Handover) -> int:
        """Form, choose variants and lay out: the size the code needs."""
        h, job = handover, self.job
        code, ncode = self.former.code(program)[0], len(program.code)
        if h.kind is FUNCTION:
            func = next((f for f in program.functions if f.start == h.stop_pc), None)
            if func is None:
                raise ValueError(f"no function starts at {h.stop_pc}")
            n, npcs, kind, end = func.end - func.start, 0, 0, func.end
            self._made = (func.start, n)
        else:
            pcs = h.pcs
            n = npcs = len(pcs)
            kind, end = KIND_NUMBERS[h.kind.value], -1
            self._made = (pcs[0] if n else h.stop_pc, n)
        if 4 * n + 4 > job.cap:
            self._grow(max(4 * n + 4, 2 * job.cap))
        switches = (h.superinstructions, h.accounting)
        if switches != self._switches:
            job.superinstructions, job.accounting = self._switches = switches
        size = self.lib.jit_compile_form(
            job, code, ncode, self.ffi.from_buffer("int64_t[]", path_array(h.pcs)), npcs, h.stop_pc, kind, h.first_exit,
            h.link_address or 0, end,
        )  # fmt: skip
        if size == -2:
            raise outside(program)
        if size < 0:
            raise AssertionError("the compile job was given too little room")  # (_grow gives what it asks for)
        return size

    def stitch(self, out: int, base: int) -> tuple[int, memoryview]:
        """Stitch what form() made into writable memory at `out` (as if at
        `base`) and flush the instruction cache at `base`: the trampolines
        used, and the compile's record (what results() reads)."""
        ffi, job = self.ffi, self.job
        if job.tramp_slots > job.tramp_room:
            self._tramp_room(max(job.tramp_slots, 2 * job.tramp_room))
        n = job.nsteps
        record = bytearray(8 * (2 * STEP_FIELDS * n + 2 * n + 1 + job.exit_width * job.nexits))
        used = self.lib.jit_compile_stitch(job, out, base, ffi.from_buffer("int64_t[]", record, require_writable=True))
        if used < 0:
            raise StitchError(ffi.string(self.error).decode())
        return used, memoryview(record).cast("q")

    def results(self, record: memoryview) -> tuple[TraceShape, memoryview, Layout]:
        """What the compile left behind, from its record: the shape (the
        formed steps and the exits), the steps as stitched, and the layout."""
        job = self.job
        n = job.nsteps
        steps_end, code_end = 2 * STEP_FIELDS * n, 2 * STEP_FIELDS * n + n + 1
        start, ops = self._made
        kind = job.kind
        shape = TraceShape(
            start,
            PackedSteps(record[: STEP_FIELDS * n], n),
            PackedExits(record[code_end + n :], job.exit_width),
            ops,
            FUNCTION if kind < 0 else _KINDS[kind],
        )
        lay = Layout(
            record[steps_end:code_end], job.tramp_at, job.tramp_slots, record[code_end : code_end + n], job.size
        )
        return shape, record[STEP_FIELDS * n : steps_end], lay
