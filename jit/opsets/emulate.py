"""Running an op set's stitched code for another target, under unicorn.

The emulated machine has its own address space: the state, each of the
module's buffers (at its own fixed base), a machine stack and a code area,
where the shim and then the program's code are placed.  The run starts at
the shim with the state's and the code's addresses as its two arguments
and ends when the shim returns to a sentinel.  A fault is a JitError.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from typing import Any

from unicorn import Uc, UcError

from ..codegen.step import Step
from ..errors import JitError
from ..targets import TARGETS, target_name
from . import OpSet, current
from .build import library_for
from .engines import Run, check_steps
from .place import place

PAGE = 0x1000
SENTINEL = 0x0010_0000
STATE = 0x0020_0000
STACK = 0x0100_0000
STACK_SIZE = 0x0010_0000
BUFFERS = 0x3F1E_4A00_0000  # (not a round number: ebpf's outcome tells addresses from values by where they point)
BUFFER_STRIDE = 0x0100_0000  # each buffer at most 16 MiB
CODE = 0x4000_0000
TIMEOUT_SECONDS = 120  # an emulated run that has not returned by then is stopped (an endless loop?)


def _pages(n: int) -> int:
    return max(PAGE, (n + PAGE - 1) // PAGE * PAGE)


def run_emulated(opset: OpSet, program: Any, target: str, steps: Sequence[Step] | None = None) -> Run:
    target = target_name(target)
    abi = TARGETS[target].emulator_abi()
    opset = current(opset)
    mod = opset.runnable()
    library = library_for(opset, target)
    t0 = time.perf_counter()
    steps = list(mod.steps(program)) if steps is None else list(steps)
    check_steps(opset, steps)
    shim = library.shim.code
    code_at = CODE + _pages(len(shim))
    code = place(library, steps).render(code_at)
    compiled = time.perf_counter() - t0

    initial = mod.buffers(program)
    if any(len(data) > BUFFER_STRIDE for data in initial.values()):
        raise JitError(f"a buffer of more than {BUFFER_STRIDE} bytes cannot be emulated")
    addresses = {name: BUFFERS + k * BUFFER_STRIDE for k, name in enumerate(initial)}
    state = mod.make_state(program, addresses)
    uc = Uc(abi.arch, abi.mode)
    uc.mem_map(SENTINEL, PAGE)
    uc.mem_map(STATE, _pages(len(state)))
    uc.mem_map(STACK, STACK_SIZE)
    uc.mem_map(CODE, _pages(code_at - CODE + len(code)))
    for name, data in initial.items():
        uc.mem_map(addresses[name], _pages(len(data)))
        uc.mem_write(addresses[name], data)
    uc.mem_write(STATE, state)
    uc.mem_write(CODE, shim)
    uc.mem_write(code_at, code)
    top = STACK + STACK_SIZE - 64
    if abi.link is None:
        top -= 8
        uc.mem_write(top, struct.pack("<Q", SENTINEL))
    else:
        uc.reg_write(abi.link, SENTINEL)
    uc.reg_write(abi.sp, top)
    uc.reg_write(abi.args[0], STATE)
    uc.reg_write(abi.args[1], code_at)
    t1 = time.perf_counter()
    try:
        uc.emu_start(CODE, SENTINEL, timeout=TIMEOUT_SECONDS * 1_000_000)
    except UcError as e:
        pc = uc.reg_read(abi.pc)
        raise JitError(f"emulated {target} code faulted at {pc:#x}: {e}") from e
    elapsed = time.perf_counter() - t1
    if uc.reg_read(abi.pc) != SENTINEL:
        raise JitError(f"emulated {target} code still running after {TIMEOUT_SECONDS} s: stopped (an endless loop?)")
    final = bytes(uc.mem_read(STATE, len(state)))
    contents = {name: bytes(uc.mem_read(addresses[name], len(data))) for name, data in initial.items()}
    return Run(mod.outcome(program, final, contents, addresses), len(steps), compiled, elapsed)
