"""The peer backend: the same steps compiled by LLVM (llvmlite), at -O0 or -O2.

It starts from the same op bodies: clang emits each op's template as LLVM IR
(the stencil before code generation, holes still symbolic).  A trace or a
whole program becomes one LLVM module with a function per step, each a copy
of its op's IR in which every hole is a constant: operands and helper
addresses as integers, jumps as (musttail) calls of the steps they go to.
LLVM then optimises the module (at -O2 the steps inline into each other)
and generates code; the same shim enters it, with the same VM state.

Side exits stay separate functions (noinline), so that linking can re-patch
one exactly as it re-patches a copy-and-patch exit: the page is made
writable (not executable), a jump written, made executable again and the
icache flushed.  This backend runs on the host only.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import llvmlite.binding as llvm

from .build import Job, jobs_for_library
from .errors import StencilBuildError, ToolchainError
from .hostlib import hostlib
from .memory import PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, protect
from .optable import optable
from .patch import jump
from .paths import ROOT, cache_dir
from .stitch import Step
from .toolchain import compile_flags, find_clang, get_target, host_target, local_flags

_DEFINE = re.compile(r"^define [^\n]*@_JIT_ENTRY\(.*?^}$", re.M | re.S)
_HOLE = re.compile(r"@(_JIT_[A-Za-z0-9_]+)\b")
_METADATA = re.compile(r",? !(?:[A-Za-z_.][\w.]*) !\d+")
_ATTRS = re.compile(r" #\d+")
_TYPE = re.compile(r"^%[\w.]+ = type .*$", re.M)
_DEFINE_END = re.compile(r"^(define [^\n]*?) ?\{$", re.M)


def _ir_flags(target_name: str) -> list[str]:
    """The stencils' flags, but stopping at unoptimised LLVM IR: clang 19's
    optimised IR can hold constant expressions that llvmlite's newer LLVM no
    longer reads, so llvmlite's own LLVM optimises each op instead."""
    flags = [f for f in compile_flags(get_target(target_name)) if f != "-c" and not f.startswith("-O")]
    return [*flags, "-O0", "-Xclang", "-disable-O0-optnone", "-S", "-emit-llvm"]


@cache
def op_ir() -> dict[str, str]:
    """Each op's function as LLVM IR text for the host, and under "" the type
    definitions they share (cached like the stencils)."""
    target = host_target()
    if target is None:
        raise ToolchainError("the LLVM backend runs natively, and this host has no native target")
    clang = find_clang()
    flags = _ir_flags(target)
    _target_machine(2)  # initialises LLVM
    h = hashlib.sha256("\0".join([clang.version, *flags]).encode())
    for path in sorted((ROOT / "stencils").iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    out = cache_dir() / "llvm" / f"{target}-{h.hexdigest()[:24]}.json"
    if out.exists():
        return json.loads(out.read_text())
    functions: dict[str, str] = {}
    types: set[str] = set()
    ops = {op.name for op in optable()}
    for job in jobs_for_library():
        if job.name not in ops:
            continue  # the shim, and stack-caching variants: LLVM does its own register allocation
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
    names: tuple[str, ...]
    steps: tuple[Step, ...]

    def address(self, step: int) -> int:
        return self.engine.get_function_address(self.names[step])

    def free(self) -> None:
        self.engine = None  # the execution engine, and its code, go with it


class LLVMBackend:
    """Compiles steps with llvmlite; `opt` is 0 (-O0) or 2 (-O2)."""

    _serial = 0

    def __init__(self, opt: int) -> None:
        self.opt = opt
        self.ir = op_ir()
        ffi, lib = hostlib()
        from .optable import helper_names
        from .stencils import HELPER_PREFIX

        self.helpers = {HELPER_PREFIX + n: int(ffi.cast("uintptr_t", getattr(lib, n))) for n in helper_names()}
        self.target = host_target()

    def _function(self, steps: Sequence[Step], names: Sequence[str], i: int, keep: set[int]) -> str:
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
            raise StencilBuildError(step.op, self.target, f"unknown hole {sym} in the LLVM IR")

        text = _HOLE.sub(value, self.ir[step.op])
        if i in keep:
            text = _DEFINE_END.sub(r"\1 noinline {", text, count=1)
        return text

    def compile(self, steps: Sequence[Step]) -> LLVMCode:
        LLVMBackend._serial += 1
        prefix = f"t{LLVMBackend._serial}"
        names = tuple(f"{prefix}_s{i}" for i in range(len(steps)))
        keep = {i for i, s in enumerate(steps) if s.op == "EXIT"}
        body = "\n".join(self._function(steps, names, i, keep) for i in range(len(steps)))
        header = f'target triple = "{llvm.get_process_triple()}"\n{self.ir[""]}\n'
        module = llvm.parse_assembly(header + body + "\n")
        module.verify()
        if self.opt:
            _optimise(module, self.opt)
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
def llvm_backend(opt: int) -> LLVMBackend:
    return LLVMBackend(opt)
