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
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import llvmlite.binding as llvm

from .build import Job, jobs_for_library
from .errors import StencilBuildError, ToolchainError
from .fuse import expand
from .hostlib import hostlib
from .memory import PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, protect
from .optable import OpInfo, optable
from .patch import jump
from .paths import ROOT, STENCILS_DIR, cache_dir
from .stitch import Step
from .toolchain import compile_flags, find_clang, get_target, host_target, local_flags

_DEFINE = re.compile(r"^define [^\n]*@_JIT_ENTRY\(.*?^}$", re.M | re.S)
_HOLE = re.compile(r"@(_JIT_[A-Za-z0-9_]+)\b")
_METADATA = re.compile(r",? !(?:[A-Za-z_.][\w.]*) !\d+")
_ATTRS = re.compile(r" #\d+")
_TYPE = re.compile(r"^%[\w.]+ = type .*$", re.M)
_DEFINE_END = re.compile(r"^(define [^\n]*?) ?\{$", re.M)

# What a peer op function returns (the PEER_* values in stencils/peer.c).
NEXT, JUMP, SIDE_EXIT, LEAVE = 0, 1, 2, 3
PEER_PREFIX = "peer:"  # op_ir() key of an op's peer function


def _ir_flags(target_name: str) -> list[str]:
    """The stencils' flags, but stopping at unoptimised LLVM IR: clang 19's
    optimised IR can hold constant expressions that llvmlite's newer LLVM no
    longer reads, so llvmlite's own LLVM optimises each op instead."""
    flags = [f for f in compile_flags(get_target(target_name)) if f != "-c" and not f.startswith("-O")]
    return [*flags, "-O0", "-Xclang", "-disable-O0-optnone", "-S", "-emit-llvm"]


@cache
def op_ir() -> dict[str, str]:
    """Each op's stencil function as LLVM IR text for the host, its peer
    function under "peer:NAME", and under "" the type definitions they
    share (cached like the stencils)."""
    target = host_target()
    if target is None:
        raise ToolchainError("the LLVM backend runs natively, and this host has no native target")
    clang = find_clang()
    flags = _ir_flags(target)
    _target_machine(2)  # initialises LLVM
    h = hashlib.sha256("\0".join([clang.version, *flags]).encode())
    for path in sorted(STENCILS_DIR.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    out = cache_dir() / "llvm" / f"{target}-{h.hexdigest()[:24]}.json"
    if out.exists():
        return json.loads(out.read_text())
    functions: dict[str, str] = {}
    types: set[str] = set()
    ops = {op.name for op in optable()}
    peer = STENCILS_DIR / "peer.c"
    jobs = [job for job in jobs_for_library() if job.name in ops]  # not the shim, nor stack-caching variants
    jobs += [Job(PEER_PREFIX + job.name, peer, job.flags) for job in jobs]
    for job in jobs:
        functions[job.name], op_types = _emit(clang.path, flags, job, target)
        types.update(op_types)
    functions[""] = "\n".join(sorted(types))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(functions, sort_keys=True))
    return functions


def _emit(clang: str, flags: list[str], job: Job, target: str) -> tuple[str, list[str]]:
    source = job.source.relative_to(ROOT)
    cmd = [clang, *flags, *local_flags(), *job.flags, str(source), "-o", "-"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StencilBuildError(job.name, target, f"clang -emit-llvm failed:\n{result.stderr.strip()}")
    module = llvm.parse_assembly(result.stdout)
    _optimise(module, 2)
    ir = str(module)
    m = _DEFINE.search(ir)
    if not m:
        raise StencilBuildError(job.name, target, "no _JIT_ENTRY in the emitted LLVM IR")
    text = _ATTRS.sub("", _METADATA.sub("", m.group(0)))
    return text.replace("define dso_local ", "define ", 1), _TYPE.findall(ir)


def _optimise(module, level: int) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=level)
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

    engine: object
    names: dict[int, str]  # step index -> the function that enters there
    steps: tuple[Step, ...]

    def address(self, step: int) -> int:
        return self.engine.get_function_address(self.names[step])

    def free(self) -> None:
        self.engine = None  # the execution engine, and its code, go with it


# -- whole-function lowering ------------------------------------------------------


@dataclass(frozen=True)
class _Edge:
    kind: int  # NEXT, JUMP or SIDE_EXIT
    to: int | None  # step index, or None: the step cannot go this way


class _Region:
    """The steps reachable from one entry without crossing a boundary, with
    the stack depth before each (relative to the depth at the entry)."""

    def __init__(self, steps: Sequence[Step], info: Sequence[OpInfo], entry: int, boundary: Sequence[bool]) -> None:
        self.entry = entry
        self.depth: dict[int, int] = {}
        self.locals: set[int] = set()
        self.low = 0  # the deepest slot below the entry's stack top that the region reads
        self.high = 0  # the highest stack depth it reaches
        work = [(entry, 0)]
        while work:
            i, depth = work.pop()
            if i in self.depth:
                if self.depth[i] != depth:
                    seen = f"step {i} is reached at stack depths {depth} and {self.depth[i]}"
                    raise StencilBuildError(steps[i].op, "llvm", seen)
                continue
            self.depth[i] = depth
            op = info[i]
            self.locals.update(_locals(steps[i], op))
            after = depth - op.pops + op.pushes
            self.low = min(self.low, depth - op.pops)
            self.high = max(self.high, depth, after)
            for edge in _edges(steps, info, i):
                if edge.to is not None and not boundary[edge.to]:
                    work.append((edge.to, after))


def _locals(step: Step, op: OpInfo) -> Iterator[int]:
    """The local slots a step reads or writes."""
    if op.has("FUSED"):
        yield from (a for name, a in expand(step.op, step.operand0, step.operand1) if name in ("LOAD", "STORE"))
    elif op.operand == "LOCAL":
        yield step.operand0


def _edges(steps: Sequence[Step], info: Sequence[OpInfo], i: int) -> list[_Edge]:
    """Where step i can go besides leaving compiled code."""
    step, op = steps[i], info[i]
    falls = not op.has("TERMINATOR") and i + 1 < len(steps)
    jumps = op.has("JUMP") and step.target is not None
    return [
        _Edge(NEXT, i + 1 if falls else None),
        _Edge(JUMP, step.target if jumps else None),
        _Edge(SIDE_EXIT, step.exit),
    ]


class _Lowering:
    """The LLVM IR text for one compile: regions, boundary functions, peer functions."""

    def __init__(self, backend: LLVMBackend, steps: Sequence[Step], prefix: str) -> None:
        self.backend, self.steps, self.prefix = backend, steps, prefix
        table = backend.ops
        self.info = [table[s.op] for s in steps]
        self.boundary = [
            op.has("CALL") or op.has("RETURN") or s.op == "EXIT" or s.target_address is not None
            for s, op in zip(steps, self.info, strict=True)
        ]
        entries = {0}
        for i, s in enumerate(steps):
            if self.info[i].has("CALL"):
                entries.add(i + 1 if s.continue_to is None else s.continue_to)
                if s.target is not None:
                    entries.add(s.target)
        self.entries = sorted(entries)
        self.names: dict[int, str] = {}
        for i in range(len(steps)):
            if self.boundary[i]:
                self.names[i] = f"{prefix}_b{i}"
            elif i in entries:
                self.names[i] = f"{prefix}_e{i}"
        self.peers: set[str] = set()

    def module(self) -> str:
        b = self.backend
        steps = self.steps
        parts = [
            b.backend_function(steps, self.names, i, noinline=steps[i].op == "EXIT")
            for i in range(len(steps))
            if self.boundary[i]
        ]
        regions = [_Region(steps, self.info, e, self.boundary) for e in self.entries if not self.boundary[e]]
        parts += [self.region(r) for r in regions]
        for op in sorted(self.peers):
            text = _HOLE.sub(b.hole_value, b.ir[PEER_PREFIX + op].replace("@_JIT_ENTRY(", f"@peer_{op}(", 1))
            parts.append(_DEFINE_END.sub(r"\1 alwaysinline {", text.replace("define ", "define internal ", 1), count=1))
        return "\n".join(parts)

    def region(self, r: _Region) -> str:
        b, low = self.backend, r.low
        size = max(1, r.high - low)
        nlocals = max(r.locals, default=-1) + 1
        out = [
            f"define preserve_nonecc void @{self.names[r.entry]}(ptr %state, ptr %sp, ptr %fp, i64 %t0, i64 %t1) {{",
            "entry:",
            f"  %S = alloca [{size} x i64], align 8",
            f"  %L = alloca [{max(1, nlocals)} x i64], align 8",
            f"  %mem.p = getelementptr i8, ptr %state, i64 {b.offsets['mem']}",
            "  %mem = load ptr, ptr %mem.p, align 8",
            f"  %msz.p = getelementptr i8, ptr %state, i64 {b.offsets['mem_size']}",
            "  %msz = load i64, ptr %msz.p, align 8",
        ]
        for k in sorted(r.locals):
            out += _copy(f"l.in{k}", "%fp", k, "%L", k)
        for j in range(low, 0):
            out += _copy(f"s.in{-j}", "%sp", j, "%S", j - low)
        out.append(f"  br label %s{r.entry}")

        def writeback(tag: str, depth: int) -> list[str]:
            lines = []
            for k in sorted(r.locals):
                lines += _copy(f"{tag}.l{k}", "%L", k, "%fp", k)
            for j in range(low, depth):
                lines += _copy(f"{tag}.s{j - low}", "%S", j - low, "%sp", j)
            return lines

        for i in sorted(r.depth):
            step, op, depth = self.steps[i], self.info[i], r.depth[i]
            after = depth - op.pops + op.pushes
            self.peers.add(step.op)
            out.append(f"s{i}:")
            out.append(f"  %sp{i} = getelementptr inbounds [{size} x i64], ptr %S, i64 0, i64 {depth - low}")
            out.append(
                f"  %r{i} = call i64 @peer_{step.op}(ptr %state, ptr %sp{i}, ptr %L, ptr %mem, i64 %msz, "
                f"i64 {step.operand0}, i64 {step.operand1}, i64 {step.position})"
            )
            cases, tails = [], []
            for edge in _edges(self.steps, self.info, i):
                if edge.to is None:
                    continue
                if not self.boundary[edge.to]:
                    cases.append(f"i64 {edge.kind}, label %s{edge.to}")
                    continue
                label = f"o{i}.{edge.kind}"
                cases.append(f"i64 {edge.kind}, label %{label}")
                tails += [f"{label}:", *writeback(label, after)]
                tails += [
                    f"  %{label}.sp = getelementptr i64, ptr %sp, i64 {after}",
                    f"  musttail call preserve_nonecc void @{self.names[edge.to]}"
                    f"(ptr %state, ptr %{label}.sp, ptr %fp, i64 0, i64 0)",
                    "  ret void",
                ]
            cases.append(f"i64 {LEAVE}, label %x{i}")
            out.append(f"  switch i64 %r{i}, label %never [ {' '.join(cases)} ]")
            out += tails
            out += [f"x{i}:", *writeback(f"x{i}", depth)]
            out += [
                f"  %x{i}.sp = getelementptr i64, ptr %sp, i64 {depth}",
                f"  %x{i}.spp = getelementptr i8, ptr %state, i64 {b.offsets['sp']}",
                f"  store ptr %x{i}.sp, ptr %x{i}.spp, align 8",
                f"  %x{i}.fpp = getelementptr i8, ptr %state, i64 {b.offsets['fp']}",
                f"  store ptr %fp, ptr %x{i}.fpp, align 8",
                "  ret void",
            ]
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


class LLVMBackend:
    """Compiles steps with llvmlite; `opt` is 0 (-O0) or 2 (-O2); `whole`
    chooses the whole-function lowering (the fair peer) over one function per step."""

    _serial = 0

    def __init__(self, opt: int, whole: bool = True) -> None:
        self.opt, self.whole = opt, whole
        self.ir = op_ir()
        self.ops = {op.name: op for op in optable()}
        ffi, lib = hostlib()
        from .optable import helper_names
        from .stencils import HELPER_PREFIX

        self.helpers = {HELPER_PREFIX + n: int(ffi.cast("uintptr_t", getattr(lib, n))) for n in helper_names()}
        self.offsets = {field: ffi.offsetof("VMState", field) for field in ("mem", "mem_size", "sp", "fp")}
        self.target = host_target()

    def hole_value(self, m: re.Match) -> str:
        """A helper hole as the helper's address (the only holes peer functions have)."""
        if m.group(1) in self.helpers:
            return _const(self.helpers[m.group(1)])
        raise StencilBuildError("?", str(self.target), f"unknown hole {m.group(1)} in the LLVM IR")

    def backend_function(self, steps: Sequence[Step], names: dict[int, str], i: int, noinline: bool) -> str:
        """Step i as its stencil function, every hole a constant or a function of `names`."""
        step = steps[i]
        after = i + 1 if step.continue_to is None else step.continue_to

        def value(m: re.Match) -> str:
            sym = m.group(1)
            if sym in ("_JIT_OPERAND0", "_JIT_OPERAND1", "_JIT_POSITION"):
                v = {"_JIT_OPERAND0": step.operand0, "_JIT_OPERAND1": step.operand1}.get(sym, step.position)
                return _const(v)
            if sym in ("_JIT_CONTINUE", "_JIT_CONTINUE_ADDR"):
                return f"@{names[after]}"
            if sym == "_JIT_TARGET":
                if step.target_address is not None:
                    return _const(step.target_address)
                return f"@{names[step.target]}"
            if sym == "_JIT_EXIT":
                return f"@{names[step.exit]}"
            if sym == "_JIT_ENTRY":
                return f"@{names[i]}"
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
            lowering = _Lowering(self, steps, prefix)
            body, names = lowering.module(), lowering.names
        else:
            names = {i: f"{prefix}_s{i}" for i in range(len(steps))}
            body = "\n".join(
                self.backend_function(steps, names, i, noinline=s.op == "EXIT") for i, s in enumerate(steps)
            )
        header = f'target triple = "{llvm.get_process_triple()}"\n{self.ir[""]}\n'
        module = llvm.parse_assembly(header + body + "\n")
        module.verify()
        if self.opt or self.whole:
            _optimise(module, self.opt)  # (at -O0: only the always-inliner, for the peer functions)
        engine = llvm.create_mcjit_compiler(module, _new_target_machine(self.opt))
        engine.finalize_object()
        return LLVMCode(engine, names, tuple(steps))

    def link(self, code: LLVMCode, step: int, destination: int) -> None:
        at = code.address(step)
        patch = jump(self.target, at, destination)
        start = at & ~(PAGE - 1)
        size = (at + len(patch) - start + PAGE - 1) // PAGE * PAGE
        protect(start, size, PROT_READ | PROT_WRITE)
        ctypes.memmove(at, patch, len(patch))
        protect(start, size, PROT_READ | PROT_EXEC)
        _, lib = hostlib()
        lib.jit_flush_icache(at, at + len(patch))


def _const(v: int) -> str:
    v &= 0xFFFFFFFFFFFFFFFF
    if v >> 63:
        v -= 1 << 64
    return f"inttoptr (i64 {v} to ptr)"


@cache
def llvm_backend(opt: int, whole: bool = True) -> LLVMBackend:
    return LLVMBackend(opt, whole)
