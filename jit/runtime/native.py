"""Running stitched machine code on this machine.

A NativeRuntime owns an arena, the entry shim (copied once, sealed) and the
helpers' addresses.  compile() lays out and stitches steps into a fresh
region and seals it; compile_handover() does the same from what tier 1
handed over, forming included, in one C call (jit.codegen.ccompile) that
takes the code's bytes from the arena's open run;
enter() calls the shim, which jumps to the code with the preserve_none
convention and comes back when a stencil returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from ..build.hostlib import hostlib
from ..build.library import load_library
from ..build.stencils import HELPER_PREFIX, StencilLibrary
from ..codegen.passes import formed_in_c
from ..codegen.step import Step
from ..codegen.stitcher import Stitcher
from ..codegen.trace import Handover, TraceShape, program_steps
from ..errors import JitError
from ..lang.ir import Program
from ..lang.optable import helper_names
from ..lang.outcome import Prepared
from ..targets import get_target, host_target
from .cinterp import NativeVM
from .config import EagerStats
from .interfaces import Backend, CompiledCode, FormsThenCompiles
from .memory import Arena, Region

if TYPE_CHECKING:  # (the stitchers are imported at the first compile: a run that compiles nothing starts sooner)
    from ..codegen.ccompile import CCompiler, RecordShape
    from ..codegen.cstitch import Plans
    from ..codegen.stitch import Layout


@dataclass
class Compiled:
    """Stitched code in a sealed region."""

    region: Region
    layout: Layout
    steps: Sequence[Step]
    trampolines: int = 0
    _stencils: Callable[[], list[str]] | None = None

    @property
    def stencils(self) -> list[str]:
        """The stencil each step was stitched from (its stack-caching variant)."""
        return self._stencils() if self._stencils else [s.op for s in self.steps]

    def address(self, step: int) -> int:
        return self.region.address + self.layout.code_offsets[step]

    def read(self) -> bytes:
        return self.region.read(0, self.layout.size)

    def free(self) -> None:
        self.region.free()

    def size(self) -> int:
        return self.layout.size


class RecordedCode(Compiled):
    """Code jit_compile put in the arena's open run, known by its address
    and size until more is asked for: its region, layout, steps and
    stencils are made from its compile's record when first needed."""

    _stencils = None  # (the dataclass's field, for its repr and eq: the record says)

    def __init__(self, arena: Arena, record: RecordShape) -> None:  # (not the dataclass's: nothing is made yet)
        self.arena, self.record = arena, record
        self.chunk, self.run = arena.adopt()
        head = record.pointer  # (a RecordHeader's first two fields: the address and the bytes taken)
        self._address, self._taken = head[0], head[1]
        self._region: Region | None = None

    @property
    def region(self) -> Region:  # type: ignore[override]  # (a field of the base, read from the record here)
        if self._region is None:
            self._region = self.arena.adopted(self.chunk, self.run, self._address, self._taken)
        return self._region

    @property
    def layout(self) -> Layout:  # type: ignore[override]  # (a field of the base, read from the record here)
        return self.record.parts()[2]

    @property
    def steps(self) -> Sequence[Step]:  # type: ignore[override]  # (a field of the base, read from the record here)
        return self.record.parts()[0].steps

    @property
    def trampolines(self) -> int:  # type: ignore[override]  # (a field of the base, read from the record here)
        return self.record.compiler.ffi.cast("RecordHeader *", self.record.pointer).trampolines

    @property
    def stencils(self) -> list[str]:
        return self.record.stencils()

    def address(self, step: int) -> int:
        return self._address + self.layout.code_offsets[step] if step else self._address

    def free(self) -> None:
        self.region.free()


class NativeRuntime(FormsThenCompiles):
    def __init__(
        self,
        library: StencilLibrary,
        arena: Arena | None = None,
        stitcher: Stitcher = Stitcher.C,
        stack_cache: bool = True,
    ) -> None:
        """stitcher: the C fast path or the Python reference (jit.codegen.emit);
        stack_cache: choose stencils that keep the top of the stack in registers
        (jit.codegen.stackcache), as deep as the library's variants go."""
        self.library = library
        self.target = get_target(library.target)
        self.arena = arena or Arena()
        self.stitcher = Stitcher(stitcher)
        self.stack_cache = stack_cache
        self.ffi, self.lib = hostlib()
        self.helpers = {
            HELPER_PREFIX + name: int(self.ffi.cast("uintptr_t", getattr(self.lib, name))) for name in helper_names()
        }
        self._plans: Plans | None = None
        self._helper_values: Any = None
        self._job: CCompiler | None = None  # (made at the first compile_handover)
        shim = library.shim
        self.shim_region = self.arena.allocate(len(shim.code))
        self.shim_region.write(0, shim.code)
        self.shim_region.seal()
        self.shim = self.ffi.cast("int64_t (*)(VMState *)", self.shim_region.address)

    def _plans_made(self) -> Plans:
        """The C stitcher's plans, made at the first compile (a run that compiles nothing never needs them)."""
        if self._plans is None:
            from ..codegen.cstitch import plans_for

            self._plans = plans_for(self.library)
            self._helper_values = self._plans.helper_values(self.helpers)
        return self._plans

    def compile(self, steps: Sequence[Step]) -> Compiled:
        if self.stitcher is Stitcher.C:  # (emit.plan's C path, without its closures: a compile's glue is its cost)
            plans = self._plans_made()
            packed, lay = plans.plan(steps, self.stack_cache)
            region = self.arena.allocate(lay.size)
            try:
                trampolines = plans.stitch_packed(packed, lay, region.view, region.address, self._helper_values)
                region.seal()
            except BaseException:
                region.free()
                raise
            return Compiled(region, lay, steps, trampolines, partial(plans.stencils, packed))
        from ..codegen.emit import plan

        planned = plan(self.library, steps, self.helpers, self.stitcher, self.stack_cache)
        region = self.arena.allocate(planned.layout.size)
        try:
            trampolines = planned.write(region.view, region.address)  # (written through its view, run where it is)
            region.seal()
        except BaseException:
            region.free()
            raise
        return Compiled(region, planned.layout, steps, trampolines, planned.stencils)

    def compile_handover(self, program: Program, handover: Handover) -> tuple[TraceShape, CompiledCode]:
        """Form what tier 1 handed over and compile it: in one C call
        (jit.codegen.ccompile) when it is formed in C and stitched in C (two
        without dual mapping, a region allocated between them), else formed
        (jit.codegen.trace.form), then compiled."""
        if self.stitcher is not Stitcher.C or not handover.in_c or not formed_in_c(handover.passes):
            return super().compile_handover(program, handover)
        job = self._job or self._job_made()
        if job is None:  # (steps formed in C are numbered as the op table is: this library's are not)
            return super().compile_handover(program, handover)
        recorded = job.compile(program, handover, self.arena)
        if recorded is not None:
            return recorded, RecordedCode(self.arena, recorded)
        region = self.arena.allocate(job.form(program, handover))  # (no dual mapping: filled, then sealed)
        try:
            trampolines, record = job.stitch(region.view, region.address)
            region.seal(flushed=True)
        except BaseException:
            region.free()
            raise
        shape, chosen, lay = job.results(record)
        return shape, Compiled(region, lay, shape.steps, trampolines, partial(job.plans.stencil_names, chosen))

    def one_call_compiler(self) -> CCompiler | None:
        """The compiler the loop between the tiers may call itself
        (stencils/tiers.c): one-call compiles only, so the C stitcher, the
        op table's numbering and a dual-mapped arena; else None."""
        if self.stitcher is not Stitcher.C or self.arena.code_run() is None:
            return None
        return self._job or self._job_made()

    def adopt_record(self, pointer: Any, start: int, ops: int) -> tuple[RecordShape, RecordedCode]:
        """The shape and code of a compile tiers.c made (`pointer`: its
        record, freed with the last of the two)."""
        from ..codegen.ccompile import RecordShape

        job = self._job
        assert job is not None, "a compile in C without the compiler"
        shape = RecordShape(job, self.ffi.gc(pointer, self.lib.jit_record_free), start, ops)
        return shape, RecordedCode(self.arena, shape)

    def _job_made(self) -> CCompiler | None:
        """The one-call compiler (made at the first compile, or by prepare()),
        unless the library's op numbers are not the op table's."""
        plans = self._plans_made()
        if not plans.table_order:
            return None
        from ..codegen.ccompile import CCompiler

        self._job = CCompiler(plans, self._helper_values, self.stack_cache)
        return self._job

    def prepare(self, program: Program | None = None) -> None:
        """The stitchers imported and the library's patch plans made (what
        the first compile of a process would otherwise take, several
        milliseconds, once), and `program`'s code as forming reads it (its
        first compile's, a fraction of a millisecond)."""
        if self.stitcher is not Stitcher.C:
            from ..codegen import emit  # noqa: F401  (the reference stitcher's imports)

            return
        job = self._job or self._job_made()
        if job is not None and program is not None:
            job.former.code(program)

    def link(self, compiled: CompiledCode, step: int, destination: int) -> None:
        """Re-patch step `step` (an exit) to jump to `destination`, W^X throughout."""
        assert isinstance(compiled, Compiled), "code from another backend"
        at, region = compiled.address(step), compiled.region
        region.patch(at - region.address, self.target.jump(at, destination))

    def enter(self, state, address: int) -> int:
        state.entry = self.ffi.cast("void *", address)
        return self.shim(state)

    def close(self) -> None:
        self.shim_region.free()


@cache
def native_runtime() -> NativeRuntime:
    target = host_target()
    if target is None:
        raise JitError("no native target for this machine; use --target to run under emulation")
    return NativeRuntime(load_library(target))


def prepare_eager(
    program: Program,
    args: Sequence[int],
    backend: Backend | None = None,
    superinstructions: bool = True,
    passes: Sequence[str] | None = None,
) -> Prepared:
    """Compile the whole program up front (with copy-and-patch, or `backend`);
    calling the result runs it natively, then frees the code."""
    rt = native_runtime()
    t0 = time.perf_counter()
    compiler = backend or rt
    steps = program_steps(program, superinstructions, compiler.default_passes if passes is None else passes)
    compiled = compiler.compile(steps)
    stats = EagerStats(len(program.code), len(steps), time.perf_counter() - t0)
    vm = NativeVM.create(program, args)

    def close() -> None:
        vm.close()
        compiled.free()

    return Prepared(lambda: rt.enter(vm.state, compiled.address(0)), vm.outcome, close, stats)
