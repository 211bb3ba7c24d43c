"""The optimising peer: the same steps compiled by LLVM (llvmlite), at -O0 or -O2.

It starts from the same op bodies (stencils/bodies.h), which clang emits as
LLVM IR in two forms, cached like the stencils:

* as stencils (template.c): a preserve_none function that works on the
  VM's own stack in memory and tail-calls its continuation;
* as plain functions (peer.c) that take the operand stack and the locals
  as pointers and return which way control goes.

Whole-function lowering (the default, `whole=True`).  The steps are split
at calls, returns, side exits and jumps to other code (the *boundaries*),
and every place where code is entered (the first step, a callee's first
step, the step a call returns to) starts a *region*: the steps reachable
from there without crossing a boundary, as one LLVM function.  In a region
the stack depth at every step is known, so the operand stack and the
locals live in allocas at fixed offsets; LLVM promotes them to SSA values
(at -O2), and the memory array is loaded once.  The VM's stack is brought
up to date only where control leaves the region: into a boundary (written
back, then a tail call of the boundary's stencil function), or out of
compiled code through a runtime error or halt.  Every check of the op
bodies stays.  A region reached from two entries is compiled twice.

Per-step lowering (`whole=False`, kept as a contender for the ablation):
one function per step, each a copy of its stencil IR with the holes made
constants, joined by musttail calls, on the VM's stack in memory.

Side exits stay separate functions (noinline), so that linking can re-patch
one exactly as it re-patches a copy-and-patch exit: the page is made
writable (not executable), a jump written, made executable again and the
icache flushed.  A call's stencil stores the function of the region that
starts after the call as the frame's return code, so a return tail-calls
straight into it.  This backend runs on the host only.
"""

from __future__ import annotations

import ctypes
import gzip
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import llvmlite.binding as llvm

from ..build import prebuilt
from ..build.hostlib import hostlib
from ..build.peer_ir import PEER_PREFIX, raw_ir_file, raw_key
from ..codegen.fuse import expand
from ..codegen.passes import REGISTER_OPS
from ..codegen.step import Step
from ..errors import JitError, StencilBuildError, ToolchainError
from ..lang.ir import call_shape, wrap64
from ..lang.optable import OpInfo, optable
from ..paths import cache_dir
from ..targets import get_target, host_target
from ..vmdef import offset
from .interfaces import CompiledCode, FormsThenCompiles
from .memory import PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, protect

_DEFINE = re.compile(r"^define [^\n]*@_JIT_ENTRY\(.*?^}$", re.M | re.S)
_HOLE = re.compile(r"@(_JIT_[A-Za-z0-9_]+)\b")
_METADATA = re.compile(r",? !(?:[A-Za-z_.][\w.]*) !\d+")
_ATTRS = re.compile(r" #\d+")
_TYPE = re.compile(r"^%[\w.]+ = type .*$", re.M)
_DEFINE_END = re.compile(r"^(define [^\n]*?) ?\{$", re.M)

# What a peer op function returns (the PEER_* values in stencils/peer.c).
NEXT, JUMP, SIDE_EXIT, LEAVE, PEER_CALL, PEER_RETURN = 0, 1, 2, 3, 4, 5
_IR_FORMAT = "2"  # part of op_ir()'s cache key: change it when _process changes


@cache
def op_ir() -> dict[str, str]:
    """Each op's stencil function as LLVM IR text for the host, its peer
    function under "peer:NAME", and under "" the type definitions they
    share: clang's IR optimised by llvmlite's LLVM (cached per LLVM version)."""
    target = host_target()
    if target is None:
        raise ToolchainError("the LLVM backend runs natively, and this host has no native target")
    _target_machine(2)  # initialises LLVM
    version = ".".join(map(str, llvm.llvm_version_info))
    key = prebuilt.source_key(
        [("clang-ir", raw_key(target).encode()), ("llvm", version.encode()), ("format", _IR_FORMAT.encode())]
    )
    out = cache_dir() / "llvm" / f"{target}-{key}.json"
    if out.exists():
        return json.loads(out.read_text())
    functions: dict[str, str] = {}
    types: set[str] = set()
    for name, text in json.loads(gzip.decompress(raw_ir_file(target).read_bytes())).items():
        functions[name], op_types = _process(name, text, target)
        types.update(op_types)
    functions[""] = "\n".join(sorted(types))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}")
    tmp.write_text(json.dumps(functions, sort_keys=True))
    os.replace(tmp, out)
    return functions


def _process(name: str, text: str, target: str) -> tuple[str, list[str]]:
    """One function of clang's IR, optimised, without metadata or attributes."""
    module = llvm.parse_assembly(text)
    # A peer function's loops (a call zeroing locals, a return moving its
    # results) run a constant number of times once inlined: left simple
    # here, the unit's own -O2 unrolls them and then promotes the stack.
    # Vectorised now, they would index the stack at variable offsets, and
    # no slot of it would reach a register.
    _optimise(module, 2, simple_loops=name.startswith(PEER_PREFIX))
    ir = str(module)
    m = _DEFINE.search(ir)
    if not m:
        raise StencilBuildError(name, target, "no _JIT_ENTRY in the emitted LLVM IR")
    text = _ATTRS.sub("", _METADATA.sub("", m.group(0)))
    return text.replace("define dso_local ", "define ", 1), _TYPE.findall(ir)


def _optimise(module, level: int, simple_loops: bool = False) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=level)
    if simple_loops:
        pto.loop_vectorization = pto.slp_vectorization = pto.loop_unrolling = pto.loop_interleaving = False
    pb = llvm.create_pass_builder(_target_machine(level), pto)
    pb.getModulePassManager().run(module, pb)


def _new_target_machine(opt: int):
    """A fresh target machine: an MCJIT engine takes ownership of the one it is
    given (and frees it with itself), so none may be shared."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    # The large code model, not PIC: MCJIT places sections anywhere, and a
    # small-model constant-table access (R_X86_64_32S) then aborts the process
    # (found by the fuzzer).  Absolute 64-bit addresses reach everywhere.
    return llvm.Target.from_default_triple().create_target_machine(opt=opt, codemodel="large", reloc="static")


@cache
def _target_machine(opt: int):
    """The target machine the pass builders use (never handed to an engine)."""
    return _new_target_machine(opt)


@dataclass
class LLVMCode:
    """One compiled module; its engine owns the code memory."""

    engine: Any  # llvmlite's ExecutionEngine
    names: dict[int, str]  # step index -> the function that enters there
    steps: tuple[Step, ...]

    def address(self, step: int) -> int:
        return self.engine.get_function_address(self.names[step])

    def free(self) -> None:
        self.engine = None  # the execution engine, and its code, go with it

    def size(self) -> None:
        return None  # MCJIT places the sections where it likes and does not say how big


# -- whole-function lowering ------------------------------------------------------

MAX_INLINE = 4  # calls inlined inside one another at most
# A callee is inlined when its own region holds at most this many steps.
# (Measured, eager -O2: spectralnorm's eval_A and times inlined run 2.7x
# faster; nbody with advance and energy inlined into main 1.25x slower.)
MAX_INLINE_STEPS = 100
MAX_INLINE_LOCALS = 64  # nor when its frame needs more locals than this (each is a value to keep and write back)


@dataclass(frozen=True)
class _Frame:
    """A call the region inlined."""

    call: int  # the CALL step
    after: int  # the step the callee returns to
    caller_fp: int | None  # the caller's locals: None for the entry frame's (in L), else an offset in S
    callee: int  # the callee's first step


@dataclass(frozen=True)
class _Node:
    """A step as a region reaches it: inside which inlined calls, with which locals."""

    step: int
    ctx: tuple[_Frame, ...] = ()
    fp: int | None = None  # the locals: None for the entry frame's (in L), else an offset in S


def _locals(step: Step, op: OpInfo) -> Iterator[int]:
    """The local slots a step reads or writes."""
    if op.has("FUSED"):
        yield from (a for name, a in expand(step.op, step.operand0, step.operand1) if name in ("LOAD", "STORE"))
    elif op.operand == "LOCAL":
        yield step.operand0


class _Lowering:
    """The LLVM IR text for one compile: regions, boundary functions, peer functions.

    A region is explored from its entry node by the ways each step can go;
    a successor that crosses a boundary ends the path there.  A CALL whose
    callee is known and small becomes an inlined frame (up to MAX_INLINE
    deep, never recursively); its RET, reached inside the region, goes back to the
    step after the call.  Stack slots are counted from the entry's stack
    top (S offsets, negative below it), locals of the entry frame sit in L.
    """

    def __init__(self, backend: LLVMBackend, steps: Sequence[Step], prefix: str) -> None:
        self.backend, self.steps, self.prefix = backend, steps, prefix
        self.info = [backend.ops[s.op] for s in steps]
        self.names: dict[int, str] = {}  # region entries
        self.boundaries: dict[int, str] = {}  # boundary functions
        self._regions: list[int] = []
        self._bounds: list[int] = []
        self.peers: set[str] = set()
        self._sizes: dict[int, int] = {}  # callee's first step -> steps in its region

    # -- what enters where ----------------------------------------------------

    def _after(self, i: int) -> int:
        s = self.steps[i]
        return i + 1 if s.continue_to is None else s.continue_to

    def _always_crosses(self, i: int) -> bool:
        s = self.steps[i]
        return s.op == "EXIT" or s.target_address is not None

    def boundary(self, i: int) -> str:
        """The stencil function of step i (registered to be emitted)."""
        if i not in self.boundaries:
            self.boundaries[i] = f"{self.prefix}_b{i}"
            self._bounds.append(i)
        return self.boundaries[i]

    def entry(self, i: int) -> str:
        """The function that enters the code at step i with nothing inlined."""
        if self._crosses(_Node(i)):
            return self.boundary(i)
        if i not in self.names:
            self.names[i] = f"{self.prefix}_e{i}"
            self._regions.append(i)
        return self.names[i]

    def module(self) -> tuple[str, dict[int, str]]:
        """The module's text, and the function of each step code enters at."""
        b, steps = self.backend, self.steps
        addresses = {0: self.entry(0)}
        addresses.update((i, self.boundary(i)) for i, s in enumerate(steps) if s.op == "EXIT")
        parts = []
        while self._regions or self._bounds:
            if self._regions:
                parts.append(self.region(self._regions.pop()))
                continue
            i = self._bounds.pop()
            callee = steps[i].target
            if self.info[i].has("CALL"):  # its callee and its return point are entries
                self.entry(self._after(i))
                if callee is not None:
                    self.entry(callee)
            parts.append(b.backend_function(steps, i, self.entry, self.boundaries[i], steps[i].op == "EXIT"))
        # Leaving compiled code (a runtime error, halt) is rare: blocks that
        # call this are laid out of the hot path.
        parts.append("define internal void @jit_cold() cold noinline {\n  ret void\n}")
        for op in sorted(self.peers):
            text = _HOLE.sub(b.hole_value, b.ir[PEER_PREFIX + op].replace("@_JIT_ENTRY(", f"@peer_{op}(", 1))
            parts.append(_DEFINE_END.sub(r"\1 alwaysinline {", text.replace("define ", "define internal ", 1), count=1))
        return "\n".join(parts), addresses

    # -- one region -------------------------------------------------------------

    def region(self, entry: int) -> str:
        return self._emit(entry, *self._explore(entry))

    def _callee_size(self, start: int) -> int:
        """Steps in the region of a callee's first step (its nested inlined calls included)."""
        if start not in self._sizes:
            self._sizes[start] = MAX_INLINE_STEPS + 1  # (while it is measured: a recursive call is not inlined)
            self._sizes[start] = len(self._explore(start)[0])
        return self._sizes[start]

    def _explore(self, entry: int):
        """The nodes of the region from `entry`, in order, with the stack depth
        before each; each one's ways on; and what the emitter needs besides."""
        steps, info = self.steps, self.info
        ids: dict[_Node, int] = {}
        order: list[tuple[_Node, int]] = []  # node, stack depth before it
        edges: dict[int, list[tuple[int, _Node, int, bool]]] = {}  # id -> (kind, successor, depth, crosses)
        locals_: set[int] = set()
        low = high = 0
        work = [(_Node(entry), 0)]
        while work:
            node, depth = work.pop()
            if node in ids:
                seen = order[ids[node]][1]
                if seen != depth:
                    msg = f"step {node.step} is reached at stack depths {depth} and {seen}"
                    raise StencilBuildError(steps[node.step].op, "llvm", msg)
                continue
            ids[node] = len(order)
            order.append((node, depth))
            i, s, op = node.step, steps[node.step], info[node.step]
            if node.fp is None:
                locals_.update(_locals(s, op))
            out: list[tuple[int, _Node, int]] = []
            if op.has("CALL"):
                params, extra = call_shape(s.operand1)
                low, high = min(low, depth - params), max(high, depth + extra)
                callee = s.target
                assert callee is not None  # (a call with no target is a boundary)
                frame = _Frame(i, self._after(i), node.fp, callee)
                out.append((PEER_CALL, _Node(callee, (*node.ctx, frame), depth - params), depth + extra))
            elif op.has("RETURN"):
                frame, n = node.ctx[-1], s.operand0
                assert node.fp is not None
                low = min(low, depth - n)
                out.append((PEER_RETURN, _Node(frame.after, node.ctx[:-1], frame.caller_fp), node.fp + n))
            else:
                after = depth - op.pops + op.pushes
                low, high = min(low, depth - op.pops), max(high, depth, after)
                falls = not op.has("TERMINATOR") and i + 1 < len(steps)
                jumps = op.has("JUMP") and s.target is not None
                ways = ((NEXT, i + 1 if falls else None), (JUMP, s.target if jumps else None), (SIDE_EXIT, s.exit))
                for kind, to in ways:
                    if to is not None:
                        out.append((kind, _Node(to, node.ctx, node.fp), after))
            edges[ids[node]] = []
            for kind, succ, d in out:
                crosses = self._crosses(succ)
                edges[ids[node]].append((kind, succ, d, crosses))
                if not crosses:
                    work.append((succ, d))

        # Frames whose callee can leave the region need a return point others can enter.
        escaping: set[tuple[_Frame, ...]] = set()
        for k, (node, _) in enumerate(order):
            if any(crosses for *_, crosses in edges[k]):
                escaping.update(node.ctx[: n + 1] for n in range(len(node.ctx)))
        return order, edges, ids, locals_, low, high, escaping

    def _crosses(self, node: _Node) -> bool:
        """Whether reaching `node` leaves the region (through its step's stencil)."""
        i, s, op = node.step, self.steps[node.step], self.info[node.step]
        if self._always_crosses(i):
            return True
        if op.has("RETURN"):
            return not node.ctx
        if op.has("CALL"):
            recursive = s.target in {f.callee for f in node.ctx}
            if s.target is None or recursive or len(node.ctx) >= MAX_INLINE:
                return True
            if sum(call_shape(s.operand1)) > MAX_INLINE_LOCALS:
                return True
            return self._callee_size(s.target) > MAX_INLINE_STEPS
        return False

    def _emit(self, entry, order, edges, ids, locals_, low, high, escaping) -> str:
        b, steps = self.backend, self.steps
        size = max(1, high - low)
        nlocals = max(locals_, default=-1) + 1
        out = [
            f"define preserve_nonecc void @{self.names[entry]}(ptr %state, ptr %sp, ptr %fp, i64 %t0, i64 %t1, "
            "ptr %mem.in, i64 %msz.in, i64 %g0, i64 %g1, i64 %g2, double %f0, double %f1) {",
            "entry:",
            f"  %S = alloca [{size} x i64], align 8",
            f"  %L = alloca [{max(1, nlocals)} x i64], align 8",
            f"  %mem.p = getelementptr i8, ptr %state, i64 {b.offsets['mem']}",
            "  %mem = load ptr, ptr %mem.p, align 8",
            f"  %msz.p = getelementptr i8, ptr %state, i64 {b.offsets['mem_size']}",
            "  %msz = load i64, ptr %msz.p, align 8",
        ]
        for k in sorted(locals_):
            out += _copy(f"l.in{k}", "%fp", k, "%L", k)
        for j in range(low, 0):
            out += _copy(f"s.in{-j}", "%sp", j, "%S", j - low)
        out.append("  br label %n0")

        def slot(tag: str, offset: int) -> str:
            out_lines.append(f"  %{tag} = getelementptr inbounds [{size} x i64], ptr %S, i64 0, i64 {offset - low}")
            return f"%{tag}"

        def real_fp(tag: str, fp: int | None) -> str:
            if fp is None:
                return "%fp"
            out_lines.append(f"  %{tag} = getelementptr i64, ptr %sp, i64 {fp}")
            return f"%{tag}"

        def writeback(tag: str, depth: int) -> None:
            for k in sorted(locals_):
                out_lines.extend(_copy(f"{tag}.l{k}", "%L", k, "%fp", k))
            for j in range(low, depth):
                out_lines.extend(_copy(f"{tag}.s{j - low}", "%S", j - low, "%sp", j))

        for k, (node, depth) in enumerate(order):
            i, s = node.step, steps[node.step]
            self.peers.add(s.op)
            out_lines: list[str] = [f"n{k}:"]
            sp = slot(f"sp{k}", depth)
            fp = "%L" if node.fp is None else slot(f"fp{k}", node.fp)
            rsp, rfp, ret = "null", "null", "null"
            if self.info[i].has("CALL"):
                out_lines.append(f"  %rsp{k} = getelementptr i64, ptr %sp, i64 {depth}")
                rsp, rfp = f"%rsp{k}", real_fp(f"rfp{k}", node.fp)
                assert s.target is not None  # (a call with no target is a boundary)
                frame = _Frame(i, self._after(i), node.fp, s.target)
                if (*node.ctx, frame) in escaping:
                    ret = f"@{self.entry(frame.after)}"
            out_lines.append(
                f"  %r{k} = call i64 @peer_{s.op}(ptr %state, ptr {sp}, ptr {fp}, ptr %mem, i64 %msz, "
                f"i64 {s.operand0}, i64 {s.operand1}, i64 {s.position}, ptr {rsp}, ptr {rfp}, ptr {ret})"
            )
            cases, tails = [], []
            for kind, succ, d, crosses in edges[k]:
                if not crosses:
                    cases.append(f"i64 {kind}, label %n{ids[succ]}")
                    continue
                label = f"o{k}.{kind}"
                cases.append(f"i64 {kind}, label %{label}")
                main, out_lines = out_lines, [f"{label}:"]
                writeback(label, d)
                target_fp = real_fp(f"{label}.fp", succ.fp)
                out_lines += [
                    f"  %{label}.sp = getelementptr i64, ptr %sp, i64 {d}",
                    f"  musttail call preserve_nonecc void @{self.boundary(succ.step)}"
                    f"(ptr %state, ptr %{label}.sp, ptr {target_fp}, i64 0, i64 0, ptr %mem, i64 %msz, "
                    "i64 %g0, i64 %g1, i64 %g2, double %f0, double %f1)",
                    "  ret void",
                ]
                tails += out_lines
                out_lines = main
            cases.append(f"i64 {LEAVE}, label %x{k}")
            out_lines.append(f"  switch i64 %r{k}, label %never [ {' '.join(cases)} ]")
            out += out_lines
            out += tails
            out_lines = [f"x{k}:", "  call void @jit_cold()"]
            writeback(f"x{k}", depth)
            leave_fp = real_fp(f"x{k}.fp", node.fp)
            out_lines += [
                f"  %x{k}.sp = getelementptr i64, ptr %sp, i64 {depth}",
                f"  %x{k}.spp = getelementptr i8, ptr %state, i64 {b.offsets['sp']}",
                f"  store ptr %x{k}.sp, ptr %x{k}.spp, align 8",
                f"  %x{k}.fpp = getelementptr i8, ptr %state, i64 {b.offsets['fp']}",
                f"  store ptr {leave_fp}, ptr %x{k}.fpp, align 8",
                "  ret void",
            ]
            out += out_lines
        out += ["never:", "  unreachable", "}"]
        return "\n".join(out)


def _copy(tag: str, src: str, i: int, dst: str, j: int) -> list[str]:
    """One slot from src[i] to dst[j] (slots of 8 bytes)."""
    return [
        f"  %{tag}.a = getelementptr i64, ptr {src}, i64 {i}",
        f"  %{tag}.v = load i64, ptr %{tag}.a, align 8",
        f"  %{tag}.b = getelementptr i64, ptr {dst}, i64 {j}",
        f"  store i64 %{tag}.v, ptr %{tag}.b, align 8",
    ]


class LLVMBackend(FormsThenCompiles):
    # (the whole-function lowering keeps locals in SSA values itself and
    # refuses the registers pass's steps; the per-step one is a peer,
    # compiled as the stencils are without any pass)
    default_passes: tuple[str, ...] = ()

    """Compiles steps with llvmlite; `opt` is 0 (-O0) or 2 (-O2); `whole`
    chooses the whole-function lowering (the fair peer) over one function per step."""

    _serial = 0

    def __init__(self, opt: int, whole: bool = True) -> None:
        self.opt, self.whole = opt, whole
        self.ir = op_ir()
        self.ops = {op.name: op for op in optable()}
        ffi, lib = hostlib()
        from ..build.stencils import HELPER_PREFIX
        from ..lang.optable import helper_names

        self.helpers = {HELPER_PREFIX + n: int(ffi.cast("uintptr_t", getattr(lib, n))) for n in helper_names()}
        self.offsets = {field: offset("VMState", field) for field in ("mem", "mem_size", "sp", "fp")}
        self.target = host_target()

    def hole_value(self, m: re.Match) -> str:
        """A helper hole as the helper's address (the only holes peer functions have)."""
        if m.group(1) in self.helpers:
            return _const(self.helpers[m.group(1)])
        raise StencilBuildError("?", str(self.target), f"unknown hole {m.group(1)} in the LLVM IR")

    def backend_function(
        self, steps: Sequence[Step], i: int, entry: Callable[[int], str], own: str, noinline: bool
    ) -> str:
        """Step i as its stencil function `own`, every hole a constant or the
        function `entry(j)` that enters the code at step j."""
        step = steps[i]
        after = i + 1 if step.continue_to is None else step.continue_to

        def value(m: re.Match) -> str:
            sym = m.group(1)
            if sym in ("_JIT_OPERAND0", "_JIT_OPERAND1", "_JIT_POSITION"):
                v = {"_JIT_OPERAND0": step.operand0, "_JIT_OPERAND1": step.operand1}.get(sym, step.position)
                return _const(v)
            if sym in ("_JIT_OPERAND0_X8", "_JIT_OPERAND1_X8"):  # (a local's byte offset)
                return _const(8 * (step.operand0 if sym == "_JIT_OPERAND0_X8" else step.operand1))
            if sym in ("_JIT_CONTINUE", "_JIT_CONTINUE_ADDR"):
                return f"@{entry(after)}"
            if sym == "_JIT_TARGET":
                if step.target_address is not None:
                    return _const(step.target_address)
                assert step.target is not None, f"step {i} ({step.op}) has a jump but no target"
                return f"@{entry(step.target)}"
            if sym == "_JIT_EXIT":
                assert step.exit is not None, f"step {i} ({step.op}) has a side exit but no exit step"
                return f"@{entry(step.exit)}"
            if sym == "_JIT_ENTRY":
                return f"@{own}"
            if sym in self.helpers:
                return _const(self.helpers[sym])
            raise StencilBuildError(step.op, str(self.target), f"unknown hole {sym} in the LLVM IR")

        text = _HOLE.sub(value, self.ir[step.op])
        if noinline:
            text = _DEFINE_END.sub(r"\1 noinline {", text, count=1)
        return text

    def compile(self, steps: Sequence[Step]) -> LLVMCode:
        LLVMBackend._serial += 1
        prefix = f"t{LLVMBackend._serial}"
        if self.whole:
            held = sorted({s.op for s in steps} & REGISTER_OPS)
            if held:  # (its lowering keeps every local in an SSA value already)
                raise JitError(
                    f"the LLVM peer's whole-function lowering takes no locals in registers ({', '.join(held)}): "
                    "leave the registers pass out"
                )
            body, names = _Lowering(self, steps, prefix).module()
        else:
            names = {i: f"{prefix}_s{i}" for i in range(len(steps))}
            body = "\n".join(
                self.backend_function(steps, i, names.__getitem__, names[i], s.op == "EXIT")
                for i, s in enumerate(steps)
            )
        header = f'target triple = "{llvm.get_process_triple()}"\n{self.ir[""]}\n'
        module = llvm.parse_assembly(header + body + "\n")
        module.verify()
        if self.opt or self.whole:
            _optimise(module, self.opt)  # (at -O0: only the always-inliner, for the peer functions)
        engine = llvm.create_mcjit_compiler(module, _new_target_machine(self.opt))
        engine.finalize_object()
        return LLVMCode(engine, names, tuple(steps))

    def link(self, code: CompiledCode, step: int, destination: int) -> None:
        at = code.address(step)
        patch = get_target(str(self.target)).jump(at, destination)
        start = at & ~(PAGE - 1)
        size = (at + len(patch) - start + PAGE - 1) // PAGE * PAGE
        protect(start, size, PROT_READ | PROT_WRITE)
        ctypes.memmove(at, patch, len(patch))
        protect(start, size, PROT_READ | PROT_EXEC)
        _, lib = hostlib()
        lib.jit_flush_icache(at, at + len(patch))


def _const(v: int) -> str:
    return f"inttoptr (i64 {wrap64(v)} to ptr)"


@cache
def llvm_backend(opt: int, whole: bool = True) -> LLVMBackend:
    return LLVMBackend(opt, whole)
