"""Trace forming in C (stencils/form.c): the compile path's first stage, with no Python object per step.

jit.codegen.trace.form_trace and form_function, and jit.codegen.fuse, stay
the readable reference; form.c does the same (guards, inlined calls, exit
stubs, the ending, a function's blocks, superinstructions) straight into
the StepPlan array the stitcher reads, and tests/test_cform.py holds the two to the same steps and exits.
The steps come back as PackedSteps: a sequence that makes Step objects only
when something looks at them (a listing, a debugger's line table); a compile
hands the packed array to the stitcher as it is (jit.codegen.emit).
"""

from __future__ import annotations

import weakref
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any, overload

from ..build.hostlib import hostlib
from ..lang.ir import OPS, Program, wrap64
from ..lang.optable import BLOCK_ENDS
from ..vmdef import constant
from .fuse import COMPARES, FLOAT
from .passes import FLOAT_USE, LOCAL_REGS
from .step import Step
from .trace import ExitInfo

STEP_FIELDS = 10  # a StepPlan's int64 fields (vm.h)
REGISTER_SCRATCH = constant("REGISTER_SCRATCH")  # int64s a step the registers pass needs (form.c's registers())
KIND_NUMBERS = {"loop": 0, "link": 1, "exit": 2, "return": 3}  # FormOps' kind_* (TraceKind values)
_BY_NAME = {op.name: op.opcode for op in OPS}


class PackedExits(Mapping[int, ExitInfo]):
    """Exits as form.c made them: `width` int64s each (id, resume pc,
    micro-ops, step[, a call?]), ids consecutive.  An ExitInfo is made only
    for an exit looked at (most never are: a compile makes dozens)."""

    def __init__(self, data: array | memoryview, width: int) -> None:
        self.data, self.width = data, width
        self.first = data[0] if data else 0

    def __len__(self) -> int:
        return len(self.data) // self.width

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.first + len(self)))

    def __getitem__(self, exit_id: int) -> ExitInfo:
        k = (exit_id - self.first) * self.width
        if not 0 <= k < len(self.data):
            raise KeyError(exit_id)
        f = self.data
        return ExitInfo(f[k + 1], f[k + 2], f[k + 3], self.width > 4 and bool(f[k + 4]))


class PackedSteps(Sequence[Step]):
    """Steps as StepPlans, each op by its number in the op table."""

    def __init__(self, data: array | memoryview, n: int) -> None:
        self.data, self.n = data, n  # data: STEP_FIELDS int64s per step
        self._steps: list[Step] | None = None

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, k: int) -> Step: ...
    @overload
    def __getitem__(self, k: slice) -> list[Step]: ...
    def __getitem__(self, k: int | slice) -> Step | list[Step]:
        return self.steps()[k]

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def steps(self) -> list[Step]:
        """The Step objects (made on first use)."""
        if self._steps is None:
            f = self.data
            self._steps = [
                Step(
                    OPS[f[k]].name,
                    f[k + 1],
                    f[k + 2],
                    f[k + 3],
                    None if f[k + 4] < 0 else f[k + 4],
                    None if f[k + 5] < 0 else f[k + 5],
                    f[k + 7] or None,
                    None if f[k + 6] < 0 else f[k + 6],
                    f[k + 8],
                    f[k + 9],
                )
                for k in range(0, STEP_FIELDS * self.n, STEP_FIELDS)
            ]
        return self._steps


class Former:
    """form.c, with its op numbers filled in once and each program's code as C reads it."""

    def __init__(self) -> None:
        self.ffi, self.lib = hostlib()
        ops = self.ffi.new("FormOps *")
        for field in (
            "load", "store", "push_int", "add", "sub", "inc_local", "load_addk", "load2", "store_load", "addk",
            "fmul_fadd",
            "jump", "jz", "jnz", "call", "ret", "drop", "guard_zero", "guard_nonzero", "count", "take_exit", "exit",
            "dup", "swap", "over",
        ):  # fmt: skip
            setattr(ops, field, _BY_NAME[field.upper()])
        for k, name in enumerate(FLOAT):  # (vm.h's FLOAT_FUSED order)
            ops.float_op[k], ops.float_ll[k], ops.float_l[k] = (_BY_NAME[n] for n in (name, f"{name}_LL", f"{name}_L"))
        for k, name in enumerate(COMPARES):  # (vm.h's COMPARES order)
            ops.compare[k], ops.jump_if[k], ops.guard_if[k] = (_BY_NAME[n] for n in (name, f"J{name}", f"GUARD_{name}"))
        for kind, number in KIND_NUMBERS.items():
            setattr(ops, f"kind_{kind}", number)
        for j in range(LOCAL_REGS):
            for form in ("load", "store", "fill", "spill", "inc"):
                getattr(ops, f"{form}_r")[j] = _BY_NAME[f"{form.upper()}_R{j}"]
        # Per op number, for the registers pass: its stack effect, and what the scan for float locals sees in it.
        self._tables = (
            self.ffi.new("int8_t[]", [op.pops for op in OPS]),
            self.ffi.new("int8_t[]", [op.pushes for op in OPS]),
            self.ffi.new("uint8_t[]", [FLOAT_USE[op.name] for op in OPS]),
        )
        ops.pops, ops.pushes, ops.float_use = self._tables
        self.ops = ops
        # Per op number: its operand is a label; it ends a basic block (optable.BLOCK_ENDS).
        self.is_label = self.ffi.new("uint8_t[]", [int(op.operand == "LABEL") for op in OPS])
        self.ends_block = self.ffi.new("uint8_t[]", [int(bool(op.flags & BLOCK_ENDS)) for op in OPS])
        self._code: dict[int, tuple[weakref.ref[Program], Any]] = {}
        self._room = 0  # steps the scratch buffers have room for
        self._entry: Any = None
        self._where: Any = None
        self._stubs: Any = None
        self._exits: Any = None
        self._regs: Any = None
        self._result = self.ffi.new("int64_t[2]")

    def code(self, program: Program) -> Any:
        """The program's instructions as (op, a, b) int64 triples, made once
        per program: the C array, the Python array it views, and its address."""
        key = id(program)
        found = self._code.get(key)
        if found is not None and found[0]() is program:
            return found[1]
        try:  # (operands outside int64 are rare: wrapped only when there are some)
            flat = array("q", [v for ins in program.code for v in (ins.op, ins.a, ins.b)] or [0])
        except OverflowError:
            flat = array("q", [v for ins in program.code for v in (ins.op, wrap64(ins.a), wrap64(ins.b))])
        made = self.ffi.from_buffer("int64_t[]", flat), flat, flat.buffer_info()[0]
        self._code[key] = (weakref.ref(program, self._forget(key)), made)
        return made

    def _forget(self, key: int) -> Callable[[object], None]:
        """What drops a program's code once the program is gone."""

        def forget(_: object) -> None:
            self._code.pop(key, None)

        return forget

    def form(
        self,
        program: Program,
        pcs: Sequence[int],
        stop_pc: int,
        kind: str,
        first_exit: int,
        link_address: int | None,
        superinstructions: bool,
        accounting: bool = True,
        registers: bool = False,
    ) -> tuple[PackedSteps, PackedExits, str]:
        """The steps, the exits and the kind, as form_trace makes them (with
        the registers pass, `registers`)."""
        ffi = self.ffi
        n = len(pcs)
        cap = self.lib.jit_form_room(n, registers)
        if cap > self._room:  # scratch for form.c, kept from call to call
            self._room = max(cap, 2 * self._room)
            self._entry = ffi.new("uint8_t[]", self._room + 1)
            self._where = ffi.new("int64_t[]", self._room + 1)
            self._stubs = ffi.new("int64_t[]", self._room)
            self._exits = ffi.new("int64_t[]", self._room)
            self._regs = ffi.new("int64_t[]", REGISTER_SCRATCH * (self._room + 1))
        out = _ZERO * (STEP_FIELDS * cap)
        path = path_array(pcs)
        made = self.lib.jit_form_trace(
            self.ops,
            self.code(program)[0],
            len(program.code),
            ffi.from_buffer("int64_t[]", path),
            n,
            stop_pc,
            KIND_NUMBERS[kind],
            first_exit,
            link_address or 0,
            int(superinstructions),
            int(accounting),
            int(registers),
            ffi.from_buffer("StepPlan[]", out, require_writable=True),
            cap,
            self._exits,
            self._result,
            self._entry,
            self._where,
            self._stubs,
            self._regs,
        )
        if made == -2:
            raise outside(program)
        if made < 0:
            raise AssertionError("form.c was given too little room")  # (cap is what it asks for)
        del out[STEP_FIELDS * made :]
        found = array("q")
        found.frombytes(ffi.buffer(self._exits, 32 * self._result[1]))
        return PackedSteps(out, made), PackedExits(found, 4), _KIND_NAMES[self._result[0]]

    def form_function(
        self,
        program: Program,
        start: int,
        end: int,
        first_exit: int,
        superinstructions: bool,
        accounting: bool = True,
        registers: bool = False,
    ) -> tuple[PackedSteps, PackedExits]:
        """The steps and exits of the function [start, end), as form_function makes them."""
        ffi = self.ffi
        if not 0 <= start < end <= len(program.code):  # (C indexes the code with them)
            raise ValueError(f"no function [{start}, {end}) in a program of {len(program.code)} instructions")
        n = end - start
        cap = self.lib.jit_form_room(n, registers)
        out = _ZERO * (STEP_FIELDS * cap)
        exits = ffi.new("int64_t[]", 5 * n)
        count = ffi.new("int64_t *")
        made = self.lib.jit_form_function(
            self.ops,
            self.code(program)[0],
            start,
            end,
            first_exit,
            self.is_label,
            self.ends_block,
            int(superinstructions),
            int(accounting),
            int(registers),
            ffi.from_buffer("StepPlan[]", out, require_writable=True),
            cap,
            exits,
            count,
            ffi.new("uint8_t[]", n + 1),
            ffi.new("int64_t[]", n),
            ffi.new("int64_t[]", n),
            ffi.new("int64_t[]", 3 * n),
            ffi.new("uint8_t[]", cap + 1),
            ffi.new("int64_t[]", cap + 1),
            ffi.new("int64_t[]", REGISTER_SCRATCH * (cap + 1)) if registers else ffi.NULL,
        )
        if made < 0:
            raise AssertionError("form.c was given too little room")  # (cap is what it asks for)
        del out[STEP_FIELDS * made :]
        found = array("q")
        found.frombytes(ffi.buffer(exits, 40 * count[0]))
        return PackedSteps(out, made), PackedExits(found, 5)


_ZERO = array("q", [0])


def path_array(pcs: Sequence[int]) -> array:
    """A recorded path as C reads it: the recorder's int64 array as it is, else a copy (never empty)."""
    if type(pcs) is array and pcs.typecode == "q":
        return pcs
    return array("q", pcs) if len(pcs) else _ZERO


def outside(program: Program) -> ValueError:
    """What form.c's -2 means: a recorded position outside the program."""
    return ValueError(f"a recorded path names positions outside the program (0 to {len(program.code) - 1})")


_KIND_NAMES = {v: k for k, v in KIND_NUMBERS.items()}


@cache
def former() -> Former:
    """The one Former of this process."""
    return Former()
