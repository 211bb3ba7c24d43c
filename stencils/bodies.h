/* The semantics of every micro-op, written once.  Included by template.c
 * (one stencil per op), by switch.c and by tailcall.c, each of which defines:
 *
 *   BODY(NAME)      opens the code of op NAME (a case label or a function)
 *   OPARG, OPARG1   the instruction's operands, as int64_t
 *   POSITION        the instruction's IR position, as int64_t
 *   NEXT()          continue with the next instruction
 *   JUMP()          continue at the instruction's label
 *   SIDE_EXIT()     leave a trace through the guard's exit
 *   ENTER_CALLEE()  continue at the first instruction of the called function
 *   RETURN_CODE     machine code to return to (NULL in the interpreters)
 *   RETURN_TO(f)    continue in the caller described by Frame *f
 *   HELPER(name)    the helper function `name`
 *
 * and has `state`, `sp` (one past the top of stack) and `fp` (locals) in
 * scope.  Every body ends by transferring control; none falls through.
 *
 * Integer arithmetic wraps (it is done on uint64_t), shift counts are taken
 * modulo 64, and every case C leaves undefined is defined here, because the
 * Python reference interpreter must be able to agree bit for bit.
 */

#define PUSH_I(v) ((sp++)->i = (v))
#define PUSH_U(v) ((sp++)->u = (v))
#define PUSH_F(v) ((sp++)->f = (v))
#define POP_I() ((--sp)->i)
#define POP_F() ((--sp)->f)

#ifndef LEAVE_HOOK
#define LEAVE_HOOK() ((void)0)
#endif

/* Leave the machine code or the interpreter loop with the state saved. */
#define LEAVE(st, where)          \
    do {                          \
        LEAVE_HOOK();             \
        state->status = (st);     \
        state->pc = (where);      \
        state->sp = sp;           \
        state->fp = fp;           \
        return;                   \
    } while (0)

#define FAIL(err)                             \
    do {                                      \
        state->error = (err);                 \
        LEAVE(VM_ERROR, POSITION);            \
    } while (0)

#define BINARY_INT(NAME, expr)                  \
    BODY(NAME) {                                \
        uint64_t b = (uint64_t)POP_I();         \
        uint64_t a = (uint64_t)POP_I();         \
        PUSH_U(expr);                           \
        NEXT();                                 \
    }

#define COMPARE_INT(NAME, op)                   \
    BODY(NAME) {                                \
        int64_t b = POP_I();                    \
        int64_t a = POP_I();                    \
        PUSH_I(a op b);                         \
        NEXT();                                 \
    }

#define BINARY_FLOAT(NAME, op)                  \
    BODY(NAME) {                                \
        double b = POP_F();                     \
        double a = POP_F();                     \
        PUSH_F(a op b);                         \
        NEXT();                                 \
    }

#define COMPARE_FLOAT(NAME, op)                 \
    BODY(NAME) {                                \
        double b = POP_F();                     \
        double a = POP_F();                     \
        PUSH_I(a op b);                         \
        NEXT();                                 \
    }

BODY(PUSH_INT) {
    PUSH_I(OPARG);
    NEXT();
}

BODY(PUSH_FLOAT) {
    PUSH_U((uint64_t)OPARG);
    NEXT();
}

BODY(LOAD) {
    *sp++ = fp[OPARG];
    NEXT();
}

BODY(STORE) {
    fp[OPARG] = *--sp;
    NEXT();
}

BODY(ARG) {
    PUSH_I(state->args[OPARG]);
    NEXT();
}

BODY(DUP) {
    sp[0] = sp[-1];
    sp++;
    NEXT();
}

BODY(SWAP) {
    Slot t = sp[-1];
    sp[-1] = sp[-2];
    sp[-2] = t;
    NEXT();
}

BODY(OVER) {
    sp[0] = sp[-2];
    sp++;
    NEXT();
}

BODY(DROP) {
    sp--;
    NEXT();
}

BINARY_INT(ADD, a + b)
BINARY_INT(SUB, a - b)
BINARY_INT(MUL, a * b)
BINARY_INT(AND, a & b)
BINARY_INT(OR, a | b)
BINARY_INT(XOR, a ^ b)
BINARY_INT(SHL, a << (b & 63))
/* Arithmetic shift right, written without relying on signed >>. */
BINARY_INT(SHR, (a >> (b & 63)) | ((a >> 63) ? ~(~(uint64_t)0 >> (b & 63)) : 0))

/* Truncating division; INT64_MIN / -1 wraps to INT64_MIN (remainder 0). */
BODY(DIV) {
    int64_t b = POP_I();
    int64_t a = POP_I();
    if (b == 0) {
        sp += 2;
        FAIL(VM_ERR_DIV_ZERO);
    }
    PUSH_I(b == -1 ? (int64_t)(0 - (uint64_t)a) : a / b);
    NEXT();
}

BODY(MOD) {
    int64_t b = POP_I();
    int64_t a = POP_I();
    if (b == 0) {
        sp += 2;
        FAIL(VM_ERR_DIV_ZERO);
    }
    PUSH_I(b == -1 ? 0 : a % b);
    NEXT();
}

BODY(NEG) {
    sp[-1].u = 0 - sp[-1].u;
    NEXT();
}

COMPARE_INT(EQ, ==)
COMPARE_INT(NE, !=)
COMPARE_INT(LT, <)
COMPARE_INT(LE, <=)
COMPARE_INT(GT, >)
COMPARE_INT(GE, >=)

BINARY_FLOAT(FADD, +)
BINARY_FLOAT(FSUB, -)
BINARY_FLOAT(FMUL, *)
BINARY_FLOAT(FDIV, /)

BODY(FNEG) {
    sp[-1].f = -sp[-1].f;
    NEXT();
}

BODY(FSQRT) {
    sp[-1].f = __builtin_sqrt(sp[-1].f);
    NEXT();
}

COMPARE_FLOAT(FEQ, ==)
COMPARE_FLOAT(FNE, !=)
COMPARE_FLOAT(FLT, <)
COMPARE_FLOAT(FLE, <=)
COMPARE_FLOAT(FGT, >)
COMPARE_FLOAT(FGE, >=)

BODY(ITOF) {
    sp[-1].f = (double)sp[-1].i;
    NEXT();
}

/* Truncation toward zero, saturating; NaN gives 0. */
BODY(FTOI) {
    double x = sp[-1].f;
    int64_t r;
    if (x != x) {
        r = 0;
    } else if (x >= 9223372036854775808.0) {
        r = INT64_MAX;
    } else if (x <= -9223372036854775808.0) {
        r = INT64_MIN;
    } else {
        r = (int64_t)x;
    }
    sp[-1].i = r;
    NEXT();
}

BODY(MLOAD) {
    uint64_t index = (uint64_t)sp[-1].i;
    if (index >= (uint64_t)state->mem_size) {
        FAIL(VM_ERR_MEM_RANGE);
    }
    sp[-1] = state->mem[index];
    NEXT();
}

/* Stack: ... index value  ->  ... */
BODY(MSTORE) {
    uint64_t index = (uint64_t)sp[-2].i;
    if (index >= (uint64_t)state->mem_size) {
        FAIL(VM_ERR_MEM_RANGE);
    }
    state->mem[index] = sp[-1];
    sp -= 2;
    NEXT();
}

BODY(JUMP) {
    JUMP();
}

BODY(JZ) {
    if (POP_I() == 0) {
        JUMP();
    }
    NEXT();
}

BODY(JNZ) {
    if (POP_I() != 0) {
        JUMP();
    }
    NEXT();
}

/* The arguments stay where they are and become the callee's first locals;
 * the remaining locals are zeroed above them. */
BODY(CALL) {
    int64_t info = OPARG1;
    if (state->depth >= state->max_depth) {
        FAIL(VM_ERR_CALL_DEPTH);
    }
    if (CALL_NEED(info) > state->stack_limit - sp) {
        FAIL(VM_ERR_STACK_OVERFLOW);
    }
    Frame *f = &state->frames[state->depth++];
    f->ret_pc = POSITION + 1;
    f->ret_code = RETURN_CODE;
    f->fp = fp;
    fp = sp - CALL_NPARAMS(info);
    for (int64_t n = CALL_NEXTRA(info); n > 0; n--) {
        (sp++)->i = 0;
    }
    ENTER_CALLEE();
}

/* The results move down to where the callee's locals began. */
BODY(RET) {
    int64_t n = OPARG;
    Frame *f = &state->frames[--state->depth];
    for (int64_t k = 0; k < n; k++) {
        fp[k] = sp[k - n];
    }
    sp = fp + n;
    fp = f->fp;
    RETURN_TO(f);
}

BODY(HALT) {
    LEAVE(VM_HALTED, POSITION);
}

BODY(PRINT_INT) {
    if (HELPER(print_int)(state, POP_I())) {
        sp++;
        FAIL(VM_ERR_OUTPUT);
    }
    NEXT();
}

BODY(PRINT_FLOAT) {
    if (HELPER(print_float)(state, POP_F(), OPARG)) {
        sp++;
        FAIL(VM_ERR_OUTPUT);
    }
    NEXT();
}

BODY(PRINT_BYTE) {
    if (HELPER(print_byte)(state, POP_I())) {
        sp++;
        FAIL(VM_ERR_OUTPUT);
    }
    NEXT();
}

BODY(PRINT_STR) {
    if (HELPER(print_str)(state, OPARG)) {
        FAIL(VM_ERR_OUTPUT);
    }
    NEXT();
}

/* Guards exist only in traces: they leave when the trace's assumption about
 * a branch stops holding.  The interpreters treat them as the branch. */
BODY(GUARD_ZERO) {
    if (POP_I() != 0) {
        SIDE_EXIT();
    }
    NEXT();
}

BODY(GUARD_NONZERO) {
    if (POP_I() == 0) {
        SIDE_EXIT();
    }
    NEXT();
}

/* A trace's way out: resume tier 1 at OPARG; OPARG1 says which exit. */
BODY(EXIT) {
    state->exit_index = OPARG1;
    LEAVE(VM_EXITED, OPARG);
}

/* Accounting in traces: OPARG micro-ops ran on this pass. */
BODY(COUNT) {
    state->trace_ops += OPARG;
    NEXT();
}

/* The same, on the way out through side exit OPARG1, which counts it. */
BODY(TAKE_EXIT) {
    state->trace_ops += OPARG;
    state->exit_counts[OPARG1]++;
    NEXT();
}

/* Superinstructions (jit/fuse.py): each does what the sequence it replaces
 * does, bit for bit, and none of them can fail. */

/* load a; load b */
BODY(LOAD2) {
    sp[0] = fp[OPARG];
    sp[1] = fp[OPARG1];
    sp += 2;
    NEXT();
}

/* load a; push_int k; add; store a   (sub: k negated) */
BODY(INC_LOCAL) {
    fp[OPARG].u += (uint64_t)OPARG1;
    NEXT();
}

/* load a; push_int k; add   (sub: k negated) */
BODY(LOAD_ADDK) {
    (sp++)->u = fp[OPARG].u + (uint64_t)OPARG1;
    NEXT();
}

/* push_int k; add   (sub: k negated) */
BODY(ADDK) {
    sp[-1].u += (uint64_t)OPARG;
    NEXT();
}

/* store a; load b */
BODY(STORE_LOAD) {
    fp[OPARG] = sp[-1];
    sp[-1] = fp[OPARG1];
    NEXT();
}
