/* The semantics, once: the includer defines BODY, ARG, NEXT, JUMP, HALT
 * and HELPER (how to call a function of helpers.c). */
BODY(SET) { s->acc = ARG; NEXT(); }
BODY(ADD) { s->acc += ARG; NEXT(); }
BODY(MUL) { s->acc *= ARG; NEXT(); }
BODY(XOR) { s->acc ^= ARG; NEXT(); }
BODY(MIX) { s->acc = HELPER(mix)(s->acc, ARG); NEXT(); }
BODY(LOOP) { if (--s->count != 0) JUMP(); NEXT(); }
BODY(HALT) { s->halted = 1; HALT(); }
