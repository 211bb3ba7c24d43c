"""`python -m jit validate`: every stencil on its own, in the emulator, against
the reference semantics.

For each op and each sample, a VM state is set up with random operands and
stack values (edge values first: 0, -1, 1, the int64 extremes, NaN, the
infinities, -0.0), the stencil is stitched between two HALTs (its
continuation, and its jump target, side exit or callee), and run once in the
emulator.  Every stack-caching variant of the op is checked the same way: one
that takes the top slots of the stack in registers is preceded by push_ints
that leave them there, and one that leaves slots there is followed by a HALT
that takes them from there.  The same instruction runs in the Python
reference interpreter (jit.lang.interp) from the same state; trace-only ops, which the interpreter does
not have, are checked against the few lines of semantics written here.  Status,
position, stack, locals, frames, memory, output and counters must agree, bit
for bit (two NaNs count as equal: their sign and payload are the machine's).
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from ..build.library import DEFAULT, Variant, load_library
from ..codegen.emit import Stitcher
from ..codegen.fuse import expand
from ..codegen.passes import REGISTER_OPS
from ..codegen.stackcache import count as cached_count
from ..codegen.stackcache import float_mask, state_of, stencil_name, variants
from ..codegen.step import Step
from ..lang.interp import Machine, _Stop
from ..lang.ir import (
    BY_NAME,
    INT64_MAX,
    INT64_MIN,
    OPS,
    Function,
    Instr,
    Program,
    bits_float,
    call_info,
    float_bits,
    u64,
    wrap64,
)
from ..lang.optable import OpInfo
from ..limits import MAX_CALL_DEPTH
from ..runtime.emulate import EXIT_COUNTS, FRAMES, MEMORY, VM_STACK, Emulator
from ..vmdef import ERR_CALL_DEPTH, FRAME_SIZE, pack_frame, unpack_frames
from .disasm import describe_stencil

LOCALS, MEMORY_SLOTS, ARGS = 4, 6, (7, -3, INT64_MAX)
CONTINUE_PC, TARGET_PC = 1, 2  # where the two HALTs say execution went
INT_EDGES = [0, -1, 1, INT64_MIN, INT64_MAX, 2, -2, 63, 64, MEMORY_SLOTS - 1, MEMORY_SLOTS]
FLOAT_EDGES = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1.0, -1.5, 1e308, 5e-324, 2.5]


_u, _s = u64, wrap64


def _is_nan(bits: int) -> bool:
    return (bits >> 52) & 0x7FF == 0x7FF and bits & ((1 << 52) - 1) != 0


def _bits(v: int | float) -> int:
    return float_bits(v) if isinstance(v, float) else _s(v)


def _same(a: list[int], b: list[int]) -> bool:
    return len(a) == len(b) and all(x == y or (_is_nan(_u(x)) and _is_nan(_u(y))) for x, y in zip(a, b, strict=True))


@dataclass
class Sample:
    """One input: operands and the VM state before the instruction."""

    operand0: int
    operand1: int
    stack: list[int]  # 64-bit patterns, locals first
    memory: list[int]
    frames: list[tuple[int, int, int]] = field(default_factory=list)  # (ret pc, fp slot, ret to code?)
    exit_counts: int = 0
    floats: bool = False  # hand the interpreter floats rather than ints


@dataclass
class State:
    """What the comparison looks at after one instruction."""

    status: int
    pc: int
    error: int
    stack: list[int]
    memory: list[int]
    frames: list[tuple[int, int]]  # (ret pc, fp slot)
    output: bytes
    trace_ops: int = 0
    exit_count: int = 0
    exit_index: int = 0

    def same_as(self, other: State) -> bool:
        exact = ("status", "pc", "error", "frames", "output", "trace_ops", "exit_count", "exit_index")
        return (
            all(getattr(self, name) == getattr(other, name) for name in exact)
            and _same(self.stack, other.stack)
            and _same(self.memory, other.memory)
        )


def _program(op: OpInfo, sample: Sample) -> Program:
    """A program whose pc 0 is the instruction, pc 1 and 2 halt, and pc 2
    starts a function (for call)."""
    a = TARGET_PC if op.operand in ("LABEL", "FUNC") else sample.operand0
    code = (Instr(op.opcode, a, sample.operand1, 1), Instr(_HALT, 0, 0, 2), Instr(_HALT, 0, 0, 3))
    functions = (Function("main", 0, LOCALS, 0, 0, 2), Function("callee", 1, 3, 0, 2, 3, max_stack=1))
    return Program("validate.uop", code, functions, MEMORY_SLOTS, len(ARGS), (b"hi\n",))


_HALT = next(op.opcode for op in OPS if op.name == "HALT")


def _operands(op: OpInfo, rng: random.Random, k: int) -> tuple[int, int]:
    kind = op.operand
    if op.name in REGISTER_OPS:  # (the locals the register is filled from and spilled to: _register_op)
        if op.name.startswith("INC"):  # (its constant, and the one local)
            return (INT_EDGES[k] if k < len(INT_EDGES) else rng.randrange(INT64_MIN, INT64_MAX)), rng.randrange(LOCALS)
        return rng.randrange(LOCALS), rng.randrange(LOCALS)
    if op.has("FUSED"):
        konst = INT_EDGES[k] if k < len(INT_EDGES) else rng.randrange(INT64_MIN, INT64_MAX)
        if op.name in ("LOAD2", "STORE_LOAD") or op.name.endswith("_LL"):
            return rng.randrange(LOCALS), rng.randrange(LOCALS)
        if op.name.endswith("_L"):
            return rng.randrange(LOCALS), 0
        if op.name == "FMUL_FADD":
            return 0, 0
        if op.name == "ADDK":
            return konst, 0
        return rng.randrange(LOCALS), konst
    if op.name == "CALL":
        # params, extra locals, stack needed: small, with a huge `need` sometimes.
        need = (1 << 31) - 1 if k % 7 == 3 else rng.randrange(0, 8)
        return TARGET_PC, call_info(1, 2, need)
    if op.name == "CHECK_INDEX":  # (a local, and an offset that puts it near the ends of memory)
        return rng.randrange(LOCALS), rng.choice([0, 1, -1, MEMORY_SLOTS - 1, MEMORY_SLOTS, INT64_MIN, INT64_MAX])
    if op.name in ("COUNT", "TAKE_EXIT"):
        return rng.randrange(0, 1000), rng.randrange(0, 4)
    if op.name == "EXIT":
        return rng.randrange(0, 1000), rng.randrange(0, 4)
    if kind == "INT":
        return (INT_EDGES[k] if k < len(INT_EDGES) else rng.randrange(INT64_MIN, INT64_MAX)), 0
    if kind == "FLOAT":
        x = FLOAT_EDGES[k] if k < len(FLOAT_EDGES) else rng.uniform(-1e6, 1e6)
        return float_bits(x), 0
    if kind == "LOCAL":
        return rng.randrange(LOCALS), 0
    if kind == "ARG":
        return rng.randrange(len(ARGS)), 0
    if kind == "PREC":
        return rng.randrange(0, 18), 0
    if kind == "STRING":
        return 0, 0
    if kind == "COUNT":
        return rng.randrange(0, 3), 0
    return 0, 0


def _value(rng: random.Random, k: int, floats: bool) -> int:
    if floats:
        x = (
            FLOAT_EDGES[k % len(FLOAT_EDGES)]
            if k < 3 * len(FLOAT_EDGES) and rng.random() < 0.7
            else rng.uniform(-1e9, 1e9)
        )
        return float_bits(x)
    return INT_EDGES[rng.randrange(len(INT_EDGES))] if rng.random() < 0.6 else rng.randrange(INT64_MIN, INT64_MAX)


def samples(op: OpInfo, count: int, seed: int) -> Iterator[Sample]:
    rng = random.Random(f"{op.name}:{seed}")
    floats = op.mnemonic.startswith("f") or op.name == "PRINT_FLOAT"
    for k in range(count):
        operand0, operand1 = _operands(op, rng, k)
        depth = max(op.pops, 0) + rng.randrange(0, 3) + (3 if op.name == "RET" else 1 if op.name == "CALL" else 0)
        stack = [_value(rng, k, rng.random() < 0.8 if floats else rng.random() < 0.1) for _ in range(LOCALS + depth)]
        if op.name in ("MLOAD", "MSTORE") and rng.random() < 0.7:
            at = -1 if op.name == "MLOAD" else -2
            stack[at] = rng.choice([0, 1, MEMORY_SLOTS - 1, MEMORY_SLOTS, -1, INT64_MIN])
        if op.name in ("MLOAD_IN_RANGE", "MSTORE_IN_RANGE"):  # (in range, as the guards before them made sure)
            stack += [_value(rng, k, False) for _ in range(2)]  # (deep enough that no cached variant adds slots)
            stack[-1 if op.name == "MLOAD_IN_RANGE" else -2] = rng.randrange(MEMORY_SLOTS)
        if op.has("FUSED") and op.has("BRANCH") and rng.random() < 0.3:  # (a comparison of equals)
            stack[-1] = stack[-2]
        if op.name == "CHECK_INDEX" and rng.random() < 0.5:  # (a local near the ends of memory)
            stack[operand0] = rng.choice([0, 1, -1, MEMORY_SLOTS - 1, MEMORY_SLOTS, INT64_MIN, INT64_MAX])
        memory = [_value(rng, k, rng.random() < 0.5) for _ in range(MEMORY_SLOTS)]
        frames = []
        if op.name == "RET":
            # The callee's frame starts 3 slots from the top; it returns to pc 1,
            # through machine code or (ret to code = 0) through tier 1.
            frames = [(CONTINUE_PC, len(stack) - 3, rng.randrange(2))]
        yield Sample(operand0, operand1, stack, memory, frames, rng.randrange(0, 5), floats)


# -- the reference -------------------------------------------------------------


def expected(op: OpInfo, sample: Sample, depth_limit: bool) -> State:
    """The instruction's effect, by the Python reference interpreter (or, for
    trace-only ops, by the semantics written here)."""
    if op.name in REGISTER_OPS:
        return _register_op(op, sample)
    if op.has("FUSED"):
        return _fused(op, sample)
    if op.has("TRACE_ONLY"):  # (fused ops were handled above)
        return _trace_op(op, sample)
    program = _program(op, sample)
    m = Machine(program, ARGS, memory=list(sample.memory))
    m.stack[:] = [bits_float(v) if sample.floats else v for v in sample.stack]
    m.fp = 0
    m.frames[:] = [(r, fp, code) for r, fp, code in sample.frames]
    if depth_limit:
        m.frames[:] = [(0, 0, 0)] * MAX_CALL_DEPTH
    status, pc, error = 0, 0, 0
    try:
        pc = m.code[0](0)
        status = 1  # reached a HALT (continuation or target)
        if op.name == "RET" and sample.frames and not sample.frames[0][2]:
            status = 3  # a frame without machine code to return to: back to tier 1
    except _Stop as stop:
        status, pc, error = (2 if stop.code else 1), stop.pc, stop.code
    frames = [(r, fp) for r, fp, _ in m.frames[: len(sample.frames) + 1]] if not depth_limit else []
    return State(
        status,
        pc,
        error,
        [_bits(v) for v in m.stack],
        [_bits(m.memory[i]) for i in range(len(m.memory))],
        frames,
        bytes(m.out),
        exit_count=sample.exit_counts,
        exit_index=-1 if status == 3 else 0,  # a return to tier 1 is no side exit
    )


def _fused(op: OpInfo, s: Sample) -> State:
    """A superinstruction's reference: the interpreter running what it stands
    for (a comparison fused with a branch: the comparison, then where the
    jz or jnz it expands to would go on its 0/1: the target, or on)."""
    parts = expand(op.name, s.operand0, s.operand1)
    branch = parts.pop()[0] if op.has("BRANCH") else None
    code = tuple(Instr(BY_NAME[name].opcode, a, 0, 1) for name, a in parts)
    functions = (Function("main", 0, LOCALS, 0, 0, len(code)),)
    m = Machine(Program("validate.uop", code, functions, MEMORY_SLOTS, len(ARGS)), ARGS, memory=list(s.memory))
    m.stack[:] = [bits_float(v) if s.floats else v for v in s.stack]
    for pc in range(len(code)):
        m.code[pc](pc)
    pc = CONTINUE_PC
    if branch is not None and (m.stack.pop() != 0) == (branch == "JNZ"):
        pc = TARGET_PC
    stack = [_bits(v) for v in m.stack]
    return State(1, pc, 0, stack, list(s.memory), [], b"", exit_count=s.exit_counts)


def _register_ends(op: OpInfo, s: Sample) -> tuple[int, int]:
    """The local a register op's register is filled from, and the one it is
    spilled to: FILL_Rj's and SPILL_Rj's own operand, and otherwise those of
    the fill the harness puts before the op and the spill it puts after
    (INC_Rj's second operand, both: the first is its constant)."""
    if op.name.startswith("INC"):
        return s.operand1, s.operand1
    return (s.operand1, s.operand0) if op.name.startswith("SPILL") else (s.operand0, s.operand1)


def _register_op(op: OpInfo, s: Sample) -> State:
    """A register op between a fill and a spill: the register takes the one
    local's value, LOAD_Rj pushes it, STORE_Rj replaces it with the top,
    INC_Rj adds its constant (wrapping), and the other local gets it."""
    fill_from, spill_to = _register_ends(op, s)
    stack = list(s.stack)  # (the locals come first)
    register = stack[fill_from]
    if op.name.startswith("LOAD"):
        stack.append(register)
    elif op.name.startswith("STORE"):
        register = stack.pop()
    elif op.name.startswith("INC"):
        register = _s(register + s.operand0)
    stack[spill_to] = register
    return State(1, CONTINUE_PC, 0, stack, list(s.memory), [], b"", exit_count=s.exit_counts)


def _trace_op(op: OpInfo, s: Sample) -> State:
    stack, status, pc, trace_ops, counts, exit_index = list(s.stack), 1, CONTINUE_PC, 0, s.exit_counts, 0
    if op.name in ("GUARD_ZERO", "GUARD_NONZERO"):
        cond = stack.pop()
        if (cond == 0) != (op.name == "GUARD_ZERO"):
            pc = TARGET_PC
    elif op.name == "CHECK_INDEX":  # (local operand0 is stack slot operand0: the locals come first)
        if _u(stack[s.operand0] + s.operand1) >= MEMORY_SLOTS:
            pc = TARGET_PC
    elif op.name in ("MLOAD_IN_RANGE", "MSTORE_IN_RANGE"):
        memory = list(s.memory)
        if op.name == "MLOAD_IN_RANGE":
            stack.append(memory[stack.pop()])
        else:
            value = stack.pop()
            memory[stack.pop()] = value
        return State(status, pc, 0, stack, memory, [], b"", trace_ops, counts, exit_index)
    elif op.name == "EXIT":
        status, pc, exit_index = 3, s.operand0, s.operand1
    elif op.name == "COUNT":
        trace_ops = s.operand0
    elif op.name == "TAKE_EXIT":
        trace_ops = s.operand0
        counts += 1 if s.operand1 == 0 else 0
    return State(status, pc, 0, stack, list(s.memory), [], b"", trace_ops, counts, exit_index)


# -- the emulator ----------------------------------------------------------------


class Harness:
    """One emulator per target and op, reused for every sample."""

    def __init__(self, target: str, op: OpInfo, stitcher: Stitcher = Stitcher.C, variant: Variant = DEFAULT) -> None:
        self.op = op
        program = _program(op, Sample(0, 0, [], []))
        # The steps name their stencils: no variant is chosen for them.
        library = load_library(target, variant)
        self.emu = Emulator(target, program, ARGS, library, stitcher=stitcher, stack_cache=False)
        self.library = self.emu.library

    def run(self, sample: Sample, depth_limit: bool, cached_in: int = 0, cached_out: int = 0) -> State:
        emu, op = self.emu, self.op
        ret = CONTINUE_PC if op.name == "RET" else TARGET_PC
        at = cached_count(cached_in)  # the op's step: after the pushes that fill the registers
        name = stencil_name(op.name, cached_in, cached_out)
        steps = [
            Step(name, sample.operand0, sample.operand1, 0, target=at + 2, exit=at + 2),
            Step(stencil_name("HALT", cached_out, 0), position=CONTINUE_PC),
            Step("HALT", position=TARGET_PC if op.name != "RET" else ret),
        ]
        if op.name == "CALL":
            steps[0] = Step(name, TARGET_PC, sample.operand1, 0, target=at + 2)
        stack = sample.stack
        if cached_in:  # the top slots go in the registers, pushed there by the steps before
            stack = stack[:-at]
            # Deepest first, each pushed in the file the state has it in (push_float
            # moves its operand's 64 bits as push_int does, into a float register).
            fill, mask, state = [], float_mask(cached_in), 0
            for k, v in enumerate(sample.stack[-at:]):
                floats = mask >> (at - 1 - k) & 1
                after = state_of(k + 1, float_mask(state) << 1 | floats)
                fill.append(Step(stencil_name("PUSH_FLOAT" if floats else "PUSH_INT", state, after), v, position=0))
                state = after
            steps[:0] = fill
        if op.name in REGISTER_OPS:  # (a register is seen only through a fill before and a spill after)
            j = op.name[-1]
            fill_from, spill_to = _register_ends(op, sample)
            if not op.name.startswith("SPILL"):
                steps.insert(at + 1, Step(stencil_name(f"SPILL_R{j}", cached_out, cached_out), spill_to))
            if not op.name.startswith("FILL"):
                steps.insert(0, Step(f"FILL_R{j}", fill_from))
        code = emu.compile(steps)
        uc = emu.uc
        out_before = len(emu.out)
        uc.mem_write(VM_STACK, b"".join(struct.pack("<q", _s(v)) for v in stack))
        uc.mem_write(MEMORY, b"".join(struct.pack("<q", _s(v)) for v in sample.memory))
        frames = b"".join(
            pack_frame(r, code.address(at + 1) if to_code else 0, VM_STACK + 8 * fp) for r, fp, to_code in sample.frames
        )
        if frames:
            uc.mem_write(FRAMES, frames)
        uc.mem_write(EXIT_COUNTS, struct.pack("<q", sample.exit_counts))
        depth = MAX_CALL_DEPTH if depth_limit else len(sample.frames)
        for name, value in (
            ("sp", VM_STACK + 8 * len(stack)),
            ("fp", VM_STACK),
            ("depth", depth),
            ("status", 0),
            ("pc", -1),
            ("error", 0),
            ("trace_ops", 0),
            ("exit_index", 0),
        ):
            emu.put(name, value)
        emu.enter(code.address(0))  # (the push_ints' position is 0 too: they cannot fail)
        ndepth = emu.get("depth")
        raw = unpack_frames(bytes(uc.mem_read(FRAMES, FRAME_SIZE * ndepth))) if ndepth and not depth_limit else ()
        frames_after = [(f["ret_pc"], (f["fp"] - VM_STACK) // 8) for f in raw]
        return State(
            emu.get("status"),
            emu.get("pc"),
            emu.get("error"),
            emu.stack(),
            emu.memory(),
            frames_after,
            bytes(emu.out[out_before:]),
            emu.get("trace_ops"),
            emu.slot(EXIT_COUNTS),
            emu.get("exit_index"),
        )


@dataclass
class Failure:
    op: str
    sample: Sample
    expected: State
    actual: State | str


@dataclass
class Report:
    target: str
    results: dict[str, tuple[int, int]] = field(default_factory=dict)  # stencil -> (passed, samples)
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def validate(
    target: str,
    ops: list[OpInfo],
    count: int,
    seed: int = 0,
    stitcher: Stitcher = Stitcher.C,
    variant: Variant = DEFAULT,
) -> Report:
    """stitcher: patch with the C fast path or the Python reference
    (jit.codegen.stitch); variant: the library built so (a technique
    switched off: jit.build.library.SWITCHED_OFF), every stencil it has."""
    report = Report(target)
    for op in ops:
        bench = Harness(target, op, stitcher, variant)
        for cached_in, cached_out in [
            (0, 0),
            *(v for v in variants(op, variant.stack_depth, variant.float_cache) if any(v)),
        ]:
            name = stencil_name(op.name, cached_in, cached_out)
            passed = 0
            for k, sample in enumerate(samples(op, count, seed)):
                short = LOCALS + cached_count(cached_in) - len(sample.stack)
                if short > 0:  # cached slots are operands, never locals
                    extra = [_value(random.Random(k + j), k, sample.floats) for j in range(short)]
                    sample = replace(sample, stack=[*sample.stack, *extra])
                depth_limit = op.name == "CALL" and k % 5 == 4  # every fifth call finds the frames full
                want = expected(op, sample, depth_limit)
                if depth_limit:
                    want.error = ERR_CALL_DEPTH
                try:
                    got: State | str = bench.run(sample, depth_limit, cached_in, cached_out)
                except Exception as e:
                    got = f"{type(e).__name__}: {e}"
                if isinstance(got, State) and got.same_as(want):
                    passed += 1
                else:
                    report.failures.append(Failure(name, sample, want, got))
            report.results[name.lower() if any((cached_in, cached_out)) else op.mnemonic] = (passed, count)
    return report


def format_report(report: Report, library=None, limit: int = 3) -> str:
    lines = [f"validate {report.target}: {len(report.results)} stencils (ops and their stack-caching variants)"]
    lines.append(f"  {'stencil':<16}{'passed':>8}{'samples':>9}  result")
    for name, (passed, total) in report.results.items():
        lines.append(f"  {name:<16}{passed:>8}{total:>9}  {'pass' if passed == total else 'FAIL'}")
    shown: dict[str, int] = {}
    for f in report.failures:
        if shown.get(f.op, 0) >= limit:
            continue
        shown[f.op] = shown.get(f.op, 0) + 1
        lines.append(f"\nFAIL {f.op.lower()} on {report.target}")
        lines.append(f"  operands: {f.sample.operand0:#x}, {f.sample.operand1:#x}")
        lines.append(f"  stack in: {[hex(_u(v)) for v in f.sample.stack]}")
        lines.append(f"  expected: {_describe(f.expected)}")
        lines.append(f"  actual:   {f.actual if isinstance(f.actual, str) else _describe(f.actual)}")
        if library is not None:
            lines.append(describe_stencil(report.target, library.ops[f.op]).rstrip())
    bad = sum(1 for p, t in report.results.values() if p != t)
    lines.append(f"\n{len(report.results) - bad} of {len(report.results)} stencils pass on {report.target}")
    return "\n".join(lines) + "\n"


def _describe(s: State) -> str:
    return (
        f"status {s.status} pc {s.pc} error {s.error} stack {[hex(_u(v)) for v in s.stack]} "
        f"frames {s.frames} output {s.output!r} trace_ops {s.trace_ops} exit count {s.exit_count}"
    )
