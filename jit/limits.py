"""Runtime limits, shared by every engine so that they fail in the same place."""

STACK_SLOTS = 1 << 20  # operand stack, locals included (8 MiB)
MAX_CALL_DEPTH = 10_000  # frames: deeper recursion is a runtime error
MAX_MEMORY_SLOTS = 1 << 24  # the largest .memory a program may declare (128 MiB)
MAX_LOCALS = 0xFFFF  # CALL packs params and locals in 16 bits each
MAX_FUNCTION_STACK = 1 << 16  # deepest operand stack one function may need
MAX_PRECISION = 60  # print_float digits after the point
MAX_ARGS = 64
NEVER = 1 << 62  # a tier-1 counter that never runs out (a loop or function not to compile)
MAX_EXITS = 1 << 16  # side exits one tiered run may create (each has a counter)
