"""The LLVM peer's whole-function lowering: what makes it a fair opponent, and that it stays exact."""

from __future__ import annotations

import re
import time

import llvmlite.binding as llvm
import pytest

from jit.codegen.trace import program_steps
from jit.lang.outcome import HALTED, Outcome, Prepared
from jit.lang.uop import parse, parse_file
from jit.runtime.llvm_backend import LLVMBackend, _Lowering, _optimise

from .runners import agree
from .test_programs import PROGRAMS


def optimised(source_or_path, opt: int = 2) -> tuple[str, list]:
    """The fair peer's module for a whole program, after LLVM's pipeline; and its steps."""
    program = parse_file(source_or_path) if not isinstance(source_or_path, str) else parse(source_or_path, "t.uop")
    backend = LLVMBackend(opt)
    steps = program_steps(program, passes=())  # (the peer's own default: it keeps locals in SSA values)
    body, _ = _Lowering(backend, steps, "t").module()
    module = llvm.parse_assembly(f'target triple = "{llvm.get_process_triple()}"\n{backend.ir[""]}\n{body}\n')
    _optimise(module, opt)
    return str(module), steps


def test_stack_slots_and_locals_become_ssa_values_at_O2():
    text, _ = optimised(PROGRAMS / "branchy.uop")
    assert "alloca" not in text
    # Locals are read from the VM once, on the way in; nothing in the loop
    # touches the VM's stack again (it is written back only on the way out).
    region = text[text.index("define preserve_nonecc void @t_e0") :]
    entry, rest = region.split("\n\n", 1)
    assert " load " in entry and " load " not in rest.split("\n}\n", 1)[0]


def test_at_O0_the_stack_stays_in_memory():
    text, _ = optimised(PROGRAMS / "count.uop", opt=0)
    assert "alloca" in text  # nothing promoted: -O0 is the unoptimised yardstick
    assert "call i64 @peer_" not in text  # but the op bodies are inlined (always_inline) even so


SMALL_CALLEE = """
.args 1
.func main locals=2
    arg 0
    store 0
loop:
    load 0
    jz done
    load 0
    load 1
    call add_squares
    store 1
    load 0
    push_int 1
    sub
    store 0
    jump loop
done:
    load 1
    print_int
    halt
.func add_squares params=2 results=1
    load 0
    load 0
    mul
    load 1
    add
    ret
"""


def test_a_small_callee_is_inlined_and_recursion_is_not(monkeypatch):
    callee_pc = parse(SMALL_CALLEE, "t.uop").functions[1].start
    text, steps = optimised(SMALL_CALLEE)
    callee = next(i for i, s in enumerate(steps) if s.position == callee_pc)
    assert f"@t_e{callee}(" not in text  # no function enters the callee: its call was inlined
    monkeypatch.setattr("jit.runtime.llvm_backend.MAX_INLINE_STEPS", 0)
    assert f"@t_e{callee}(" in optimised(SMALL_CALLEE)[0]  # the control: not inlined, it has its own entry
    monkeypatch.undo()
    fib, _ = optimised(PROGRAMS / "fib.uop")
    assert re.search(r"@t_b\d+\(", fib)  # fib calls itself through its call stencil
    assert agree(SMALL_CALLEE, [50]).output == str(sum(k * k for k in range(1, 51))).encode()


@pytest.mark.parametrize(
    "body",
    [
        "    load 0\n    push_int 0\n    div\n    ret\n",  # division by zero in the inlined callee
        "    load 0\n    mload\n    ret\n",  # memory index out of range (reported with its index)
    ],
    ids=["div", "mload"],
)
def test_errors_inside_an_inlined_callee_report_the_callee(body, request):
    source = (
        ".memory 4\n.args 1\n.func main locals=1\n    push_int 0\n    store 0\nloop:\n"
        "    load 0\n    push_int 9\n    add\n    call f\n    print_int\n"
        "    load 0\n    push_int 1\n    add\n    dup\n    store 0\n    push_int 100\n    lt\n    jnz loop\n"
        "    halt\n.func f params=1 results=1\n" + body
    )
    outcome = agree(source, [1])  # every engine, the fair peer eager and tiered among them, says the same
    failing = request.node.callspec.id  # div or mload
    line = next(n for n, text in enumerate(source.splitlines(), 1) if text.strip() == failing)
    assert outcome.status == "error" and outcome.error.startswith(f"test.uop:{line}: {failing}:"), outcome.error
    assert outcome.output == b""  # it fails on the first call, before printing anything


def test_prepared_runs_time_the_run_alone():
    def slow_close() -> None:
        time.sleep(0.05)

    run = Prepared(lambda: None, lambda: Outcome(b"", HALTED, 0), slow_close)
    run()
    assert run.seconds < 0.04  # the close after the run is not in it
