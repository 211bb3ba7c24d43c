"""A copy-and-patch JIT prototype library.

    import jit

    program = jit.load("bench/programs/fib.uop")   # or jit.parse(text, name="fib.uop")
    result = jit.run(program, [20])                # tiered: tier 1, then copy-and-patch traces
    result.output                                  # b"6765\\n"

`jit.run` takes engine="py" | "switch" | "tailcall" | "jit", eager=True,
backend="llvm-O0" | "llvm-O2", target="aarch64-linux" (emulated) and a
TierConfig.  `jit.library()` is the stencil library, `jit.validate()` checks
stencils in the emulator, `jit.benchmark()` measures.  Other VMs come as op
sets: `jit.opsets.load("ebpf")` (or a directory), `jit.opsets.run(...)`,
`jit.opsets.validate(...)` (docs/opsets.md).  README.md and docs/ have the
guide; the data flows C templates -> ELF objects -> stencils -> traces ->
executable memory -> run.
"""

from .api import BACKENDS, ENGINES, Result, benchmark, check_args, library, load, parse, run, validate
from .errors import Diagnostic, JitError, ProgramError
from .lang.ir import Program, ProgramBuilder
from .runtime.config import EagerStats, TierConfig, TierStats

__all__ = [
    "BACKENDS",
    "ENGINES",
    "Diagnostic",
    "EagerStats",
    "JitError",
    "Program",
    "ProgramBuilder",
    "ProgramError",
    "Result",
    "TierConfig",
    "TierStats",
    "benchmark",
    "check_args",
    "library",
    "load",
    "parse",
    "run",
    "validate",
]
