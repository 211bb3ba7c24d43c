"""Forming a trace from a recorded path: guards, inlined calls, exits.

The recorder gives the IR positions one pass of a hot loop executed, and
where it stopped: back at its start (the trace loops), at another trace's
head (it links there), after a ret out of the frame it started in (the
trace ends with that ret), or elsewhere (it exits to tier 1 there).  Along the
path, unconditional jumps vanish, each conditional branch becomes a guard
that exits to the side the path did not take, and calls are inlined: the
callee's instructions follow the CALL, whose return address is the step
after the matching RET.  A CALL whose RET is not on the path returns
through an exit stub instead (to the instruction after the call).

With accounting on (TierConfig.accounting: what --stats asks for), every
way out of the trace passes a COUNT or TAKE_EXIT step, which adds the
micro-ops executed on that pass to the state's count, and TAKE_EXIT counts
the exit too, so --stats can say how much of the program ran in traces and
how often each exit was taken, linked or not.  Off, compiled code counts
nothing: an exit is a lone EXIT, counted by the tiered engine when it
returns there, and a linked exit costs one jump.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

from ..lang.ir import Program
from ..lang.optable import BLOCK_ENDS
from .passes import DEFAULT_PASSES, apply, formed_in_c
from .step import Step

if TYPE_CHECKING:
    from .cform import Former


class TraceKind(Enum):
    """How compiled code ends: a recorded path loops to its start, jumps into
    another trace, exits to tier 1, or returns out of the frame it started in;
    or it is a whole function."""

    LOOP = "loop"
    LINK = "link"
    EXIT = "exit"
    RETURN = "return"
    FUNCTION = "function"


LOOP, LINK, EXIT, RETURN, FUNCTION = TraceKind


@dataclass(frozen=True)
class ExitInfo:
    resume_pc: int  # where tier 1 resumes
    ops: int  # micro-ops executed on the pass that leaves here
    step: int  # index of its EXIT step (what linking re-patches)
    call: bool = False  # a call of another function, out of a compiled function


@dataclass
class TraceShape:
    start_pc: int
    steps: Sequence[Step]  # (formed in C: jit.codegen.cform.PackedSteps)
    exits: Mapping[int, ExitInfo] = field(default_factory=dict)  # exit id -> info (ids consecutive)
    ops: int = 0  # micro-ops on one full pass (a whole function: its instructions)
    kind: TraceKind = LOOP
    handover: Handover | None = None  # what it was formed from (set by the tiered engine)

    def counts(self) -> tuple[int, int]:
        """How many steps and exits (what the tiered engine asks of every compile)."""
        return len(self.steps), len(self.exits)


@dataclass(slots=True)  # (not frozen: a frozen dataclass's __init__ cost microseconds a compile)
class Handover:
    """What tier 1 hands the compiler: a path it recorded (a trace: `pcs`,
    stopped at `stop_pc` for `kind`), or the start of a hot function (kind
    FUNCTION, `pcs` empty, `stop_pc` its first instruction).  Compiling
    starts here, so end-to-end compile times (jit.tools.benchmark) start here too."""

    kind: TraceKind  # LOOP, LINK or EXIT for a path; FUNCTION for a whole function
    pcs: Sequence[int]
    stop_pc: int
    first_exit: int  # the id of the first exit the code may use
    link_address: int | None = None  # LINK: the code of the trace it jumps into
    superinstructions: bool = True
    passes: tuple[str, ...] = DEFAULT_PASSES  # trace-level passes, in order (jit.codegen.passes)
    in_c: bool = True  # formed by stencils/form.c (jit.codegen.cform) unless passes it does not run are chosen
    accounting: bool = True  # COUNT and TAKE_EXIT steps (see the module's docstring)


def form(program: Program, handover: Handover) -> TraceShape:
    """The steps for a handover, with its exits: in C (jit.codegen.cform,
    the same steps as form_trace and form_function), unless passes form.c
    does not run are chosen or the handover asks for the Python reference."""
    h = handover
    in_c = h.in_c and formed_in_c(h.passes)
    if h.kind == FUNCTION and in_c:
        func = next((f for f in program.functions if f.start == h.stop_pc), None)
        if func is None:
            raise ValueError(f"no function starts at {h.stop_pc}")
        steps, found = _former().form_function(
            program, func.start, func.end, h.first_exit, h.superinstructions, h.accounting, bool(h.passes)
        )
        return TraceShape(func.start, steps, found, func.end - func.start, FUNCTION)
    if h.kind == FUNCTION:
        return form_function(program, h.stop_pc, h.first_exit, h.superinstructions, h.passes, h.accounting)
    if in_c:
        steps, exits, kind = _former().form(
            program,
            h.pcs,
            h.stop_pc,
            h.kind.value,
            h.first_exit,
            h.link_address,
            h.superinstructions,
            h.accounting,
            bool(h.passes),
        )
        return TraceShape(h.pcs[0] if h.pcs else h.stop_pc, steps, exits, len(h.pcs), _KINDS[kind])
    return form_trace(
        program,
        list(h.pcs),
        h.stop_pc,
        h.kind,
        h.first_exit,
        h.link_address,
        h.superinstructions,
        h.passes,
        h.accounting,
    )


_KINDS = {kind.value: kind for kind in TraceKind}


_FORMER: list[Former] = []


def _former() -> Former:
    """jit.codegen.cform's former (imported on first use: it loads the host library)."""
    if not _FORMER:
        from .cform import former

        _FORMER.append(former())
    return _FORMER[0]


_GUARDS = {  # (branch, taken) -> guard that holds on the recorded path
    ("JZ", True): "GUARD_ZERO",
    ("JZ", False): "GUARD_NONZERO",
    ("JNZ", True): "GUARD_NONZERO",
    ("JNZ", False): "GUARD_ZERO",
}


def form_trace(
    program: Program,
    pcs: list[int],
    stop_pc: int,
    kind: TraceKind,
    first_exit: int,
    link_address: int | None = None,
    superinstructions: bool = True,
    passes: Sequence[str] = DEFAULT_PASSES,
    accounting: bool = True,
) -> TraceShape:
    """Steps for the recorded path `pcs`, which stopped at `stop_pc` for `kind`."""
    counted = [Step("COUNT", len(pcs), position=stop_pc)] if accounting else []
    body: list[Step] = []
    stubs: list[tuple[int, int, int]] = []  # (body index needing it, resume pc, ops)
    open_calls: list[int] = []
    for r, pc in enumerate(pcs):
        ins = program.code[pc]
        name = ins.info.name
        nxt = pcs[r + 1] if r + 1 < len(pcs) else stop_pc
        if name == "JUMP":
            continue
        if name in ("JZ", "JNZ"):
            if ins.a == pc + 1:  # both sides go to the same place: only the pop matters
                body.append(Step("DROP", position=pc))
                continue
            taken = nxt == ins.a
            resume = pc + 1 if taken else ins.a
            stubs.append((len(body), resume, r + 1))
            body.append(Step(_GUARDS[name, taken], position=pc))
            continue
        if name == "CALL":
            open_calls.append(len(body))
            body.append(Step(name, ins.a, ins.b, pc, target=len(body) + 1))
            continue
        if name == "RET" and not open_calls:
            # Out of the frame the trace started in: the last step.  The ret
            # goes where the frame says: code of the caller's trace, or tier 1.
            if accounting:
                body.append(Step("COUNT", len(pcs), position=pc))
            body.append(Step(name, ins.a, ins.b, pc))
            kind = RETURN
            continue
        if name == "RET":
            call = open_calls.pop()
            body.append(Step(name, ins.a, ins.b, pc))
            body[call] = replace(body[call], continue_to=len(body))
            continue
        body.append(Step(name, ins.a, ins.b, pc))
    for call in open_calls:  # returns that happen off the path
        stubs.append((call, body[call].position + 1, 0))

    steps = list(body)
    exits: dict[int, ExitInfo] = {}
    exit_id = first_exit
    if kind == RETURN:
        pass  # the final RET leaves by itself
    elif kind == LOOP:
        steps += [*counted, Step("JUMP", position=stop_pc, target=0)]
    elif kind == LINK:
        steps += [*counted, Step("JUMP", position=stop_pc, target_address=link_address)]
    else:
        if accounting:
            steps.append(Step("TAKE_EXIT", len(pcs), exit_id, position=stop_pc))
        steps.append(Step("EXIT", stop_pc, exit_id, position=stop_pc))
        exits[exit_id] = ExitInfo(stop_pc, len(pcs), len(steps) - 1)
        exit_id += 1
    for at, resume, ops in stubs:
        stub = len(steps)
        if accounting:
            steps.append(Step("TAKE_EXIT", ops, exit_id, position=resume))
        steps.append(Step("EXIT", resume, exit_id, position=resume))
        exits[exit_id] = ExitInfo(resume, ops, len(steps) - 1)
        if steps[at].op == "CALL":
            steps[at] = replace(steps[at], continue_to=stub)
        else:
            steps[at] = replace(steps[at], exit=stub)
        exit_id += 1
    if superinstructions or passes:
        steps, where = apply(steps, passes, superinstructions)
        exits = {k: ExitInfo(e.resume_pc, e.ops, where[e.step], e.call) for k, e in exits.items()}
    return TraceShape(pcs[0] if pcs else stop_pc, steps, exits, len(pcs), kind)


def form_function(
    program: Program,
    start: int,
    first_exit: int,
    superinstructions: bool = True,
    passes: Sequence[str] = DEFAULT_PASSES,
    accounting: bool = True,
) -> TraceShape:
    """Steps for the whole function that starts at IR position `start`: hot
    functions are compiled like this, as copy-and-patch compiles a program
    eagerly.  Jumps stay inside; a recursive call enters the function's own
    first step, and a call of another function leaves through an exit to
    tier 1 at the callee's first instruction (which linking later points at
    the callee's code, once it has some).  With accounting, each basic block
    begins with a COUNT of its instructions, so --stats sees the micro-ops
    run here."""
    func = next(f for f in program.functions if f.start == start)
    pcs = range(func.start, func.end)
    code = [(pc, program.code[pc], program.code[pc].info) for pc in pcs]
    leaders = {func.start}
    for pc, ins, info in code:
        if info.operand == "LABEL" and func.start <= ins.a < func.end:
            leaders.add(ins.a)
        if info.flags & BLOCK_ENDS:
            leaders.add(pc + 1)
    starts = sorted(x for x in leaders if func.start <= x < func.end)
    block_len = {pc: end - pc for pc, end in zip(starts, [*starts[1:], func.end], strict=True)}
    # step index of each pc (with accounting, every leader is preceded by its COUNT)
    counts = block_len if accounting else {}
    index: dict[int, int] = {}
    n = 0
    for pc in pcs:
        n += pc in counts
        index[pc] = n - 1 if pc in counts else n
        n += 1
    steps: list[Step] = []
    exits: dict[int, ExitInfo] = {}
    stubs: dict[tuple[int, bool], int] = {}  # (IR position, a call?) -> first step of the stub resuming there
    tail: list[Step] = []

    def stub(resume: int, call: bool) -> int:
        if (resume, call) not in stubs:
            exit_id = first_exit + len(exits)
            stubs[resume, call] = n + len(tail)
            if accounting:
                tail.append(Step("TAKE_EXIT", 0, exit_id, position=resume))
            tail.append(Step("EXIT", resume, exit_id, position=resume))
            exits[exit_id] = ExitInfo(resume, 0, n + len(tail) - 1, call)
        return stubs[resume, call]

    for pc, ins, info in code:
        name = info.name
        if pc in counts:
            steps.append(Step("COUNT", counts[pc], position=pc))
        target = None
        if info.operand == "LABEL":
            target = index[ins.a] if ins.a in index else stub(ins.a, call=False)
        elif name == "CALL":
            target = 0 if ins.a == func.start else stub(ins.a, call=True)
        steps.append(Step(name, ins.a, ins.b, pc, target))
    steps += tail
    if superinstructions or passes:
        steps, where = apply(steps, passes, superinstructions)
        exits = {k: ExitInfo(e.resume_pc, e.ops, where[e.step], e.call) for k, e in exits.items()}
    return TraceShape(start, steps, exits, func.end - func.start, FUNCTION)


def program_steps(
    program: Program, superinstructions: bool = True, passes: Sequence[str] = DEFAULT_PASSES
) -> list[Step]:
    """One step per instruction, jumps and calls aimed at their IR targets
    (then the passes, then runs of them fused into superinstructions, unless switched off)."""
    steps = []
    for pc, ins in enumerate(program.code):
        op = ins.info
        target = ins.a if op.operand in ("LABEL", "FUNC") else None
        steps.append(Step(op.name, ins.a, ins.b, pc, target))
    return apply(steps, passes, superinstructions)[0] if superinstructions or passes else steps
