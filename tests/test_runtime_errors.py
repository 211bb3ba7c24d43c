"""Runtime errors stop every engine at the same place with the same message."""

from __future__ import annotations

import pytest

from jit.limits import MAX_CALL_DEPTH, STACK_SLOTS

from .runners import agree

CASES = {
    "div": (
        '.func main\n print_str "a"\n push_int 7\n push_int 0\n div\n halt\n',
        "test.uop:5: div: integer division by zero",
    ),
    "mod": (
        ".func main\n push_int -7\n push_int 0\n mod\n halt\n",
        "test.uop:4: mod: integer modulo by zero",
    ),
    "mload_negative": (
        ".memory 4\n.func main\n push_int -1\n mload\n halt\n",
        "test.uop:4: mload: memory index -1 out of range (memory has 4 slots)",
    ),
    "mload_past_end": (
        ".memory 4\n.func main\n push_int 4\n mload\n halt\n",
        "test.uop:4: mload: memory index 4 out of range (memory has 4 slots)",
    ),
    "mstore_no_memory": (
        ".func main\n push_int 0\n push_float 1.5\n mstore\n halt\n",
        "test.uop:4: mstore: memory index 0 out of range (memory has 0 slots)",
    ),
    "runaway_recursion": (
        ".func main\n call f\n halt\n.func f\n call f\n ret\n",
        f"test.uop:5: call: call depth exceeds {MAX_CALL_DEPTH} (runaway recursion?)",
    ),
    "stack_overflow": (
        ".func main\n call f\n halt\n.func f locals=60000\n call f\n ret\n",
        f"test.uop:5: call: stack overflow ({STACK_SLOTS} slots)",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_runtime_error(name):
    source, message = CASES[name]
    outcome = agree(source)
    assert outcome.status == "error"
    assert outcome.error == message


def test_output_before_an_error_is_kept():
    outcome = agree('.func main\n print_str "a"\n push_int 7\n push_int 0\n div\n halt\n')
    assert outcome.output == b"a"


def test_error_inside_a_loop_after_many_iterations():
    """The loop divides by 5, 4, ..., 1, 0: the error comes on the sixth pass."""
    source = """
.func main locals=1
    push_int 5
    store 0
loop:
    push_int 100
    load 0
    div
    print_int
    print_str ","
    load 0
    push_int 1
    sub
    store 0
    jump loop
"""
    outcome = agree(source)
    assert outcome.output == b"20,25,33,50,100,"
    assert outcome.error == "test.uop:8: div: integer division by zero"
