/* The semantics of every micro-op, written once.  Included by template.c
 * (one stencil per op), by the interpreters (interp_switch.c,
 * interp_tailcall.c, interp_tier1.c) and by peer.c (the LLVM peer's
 * lowering), each of which defines:
 *
 *   BODY(NAME)      opens the code of op NAME (a case label or a function)
 *   OPARG, OPARG1   the instruction's operands, as int64_t
 *   LOCAL0, LOCAL1  the locals they name (defaults below)
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
 * The operand stack is reached only through POP() and PUSH(), or directly
 * after SPILL(): the stencils that keep the top of the stack in a register
 * (template.c, STACK_CACHE) define those three, so the same bodies serve
 * every variant.  An op that fails puts back what it took, with PUSH.
 *
 * Integer arithmetic wraps (it is done on uint64_t), shift counts are taken
 * modulo 64, and every case C leaves undefined is defined here, because the
 * Python reference interpreter must be able to agree bit for bit.
 */

/* The locals OPARG and OPARG1 name.  The interpreters index fp; the
 * stencils define these to reach them at a byte offset that is itself the
 * hole (template.c), so the offset is a displacement in the instruction. */
#ifndef LOCAL0
#define LOCAL0 fp[OPARG]
#define LOCAL1 fp[OPARG1]
#endif

/* Where the stencils must keep a value in a register, so that clang does
 * not fold the load that made it into the instruction that uses it
 * (template.c: an empty asm); the interpreters and the LLVM peer, which
 * optimise across it, leave it out. */
#ifndef UNFOLDED
#define UNFOLDED(value) ((void)0)
#endif

/* A condition that is rarely true: a failure, a guard that leaves, a
 * saturating corner.  Clang then lays its block out of the straight line,
 * which the stencil processing moves out of line altogether (hot/cold
 * splitting, jit/build/tail.py). */
#define UNLIKELY(c) __builtin_expect(!!(c), 0)
#define LIKELY(c) __builtin_expect(!!(c), 1) /* (its other side is the rare one) */

#ifndef STACK_CACHE /* the interpreters: the whole stack is in memory */
#define POP() (*--sp)
#define PUSH(v)            \
    do {                   \
        Slot pushed_ = (v); \
        *sp++ = pushed_;   \
    } while (0)
#define SPILL() ((void)0)
#endif

#define PUSH_I(v) PUSH(((Slot){.i = (v)}))
#define PUSH_U(v) PUSH(((Slot){.u = (v)}))
#define PUSH_F(v) PUSH(((Slot){.f = (v)}))
#define POP_I() (POP().i)
#define POP_U() (POP().u)
#define POP_F() (POP().f)

#ifndef LEAVE_HOOK
#define LEAVE_HOOK() ((void)0)
#endif

/* The program's memory array and its size in slots.  The LLVM peer
 * (peer.c) reads them once per compiled region, since they never change
 * during a run. */
#ifndef MEMORY
#define MEMORY (state->mem)
#define MEMORY_SIZE (state->mem_size)
#endif

/* What a call needs of the VM's real stack: the slots left above sp, and
 * the caller's locals as its frame records them.  (The LLVM peer's sp and
 * fp point into its own allocas, so it defines both from the real ones.) */
#ifndef STACK_ROOM
#define STACK_ROOM() (state->stack_limit - sp)
#define CALLER_FP fp
#endif

/* Leave the machine code or the interpreter loop with the state saved.
 * (The LLVM peer defines its own: its stack lives in SSA values, and the
 * code around the op writes it back.) */
#ifndef LEAVE
#define LEAVE(st, where)          \
    do {                          \
        SPILL();                  \
        LEAVE_HOOK();             \
        state->status = (st);     \
        state->pc = (where);      \
        state->sp = sp;           \
        state->fp = fp;           \
        return;                   \
    } while (0)
#endif

#define FAIL(err)                             \
    do {                                      \
        state->error = (err);                 \
        LEAVE(VM_ERROR, POSITION);            \
    } while (0)

#define BINARY_INT(NAME, expr)                  \
    BODY(NAME) {                                \
        uint64_t b = POP_U();                   \
        uint64_t a = POP_U();                   \
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
    PUSH(LOCAL0);
    NEXT();
}

BODY(STORE) {
    LOCAL0 = POP();
    NEXT();
}

BODY(ARG) {
    PUSH_I(state->args[OPARG]);
    NEXT();
}

BODY(DUP) {
    Slot t = POP();
    PUSH(t);
    PUSH(t);
    NEXT();
}

BODY(SWAP) {
    Slot b = POP();
    Slot a = POP();
    PUSH(b);
    PUSH(a);
    NEXT();
}

BODY(OVER) {
    Slot b = POP();
    Slot a = POP();
    PUSH(a);
    PUSH(b);
    PUSH(a);
    NEXT();
}

BODY(DROP) {
    (void)POP();
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
    if (UNLIKELY(b == 0)) {
        PUSH_I(a);
        PUSH_I(b);
        FAIL(VM_ERR_DIV_ZERO);
    }
    PUSH_I(UNLIKELY(b == -1) ? (int64_t)(0 - (uint64_t)a) : a / b);
    NEXT();
}

BODY(MOD) {
    int64_t b = POP_I();
    int64_t a = POP_I();
    if (UNLIKELY(b == 0)) {
        PUSH_I(a);
        PUSH_I(b);
        FAIL(VM_ERR_DIV_ZERO);
    }
    PUSH_I(UNLIKELY(b == -1) ? 0 : a % b);
    NEXT();
}

BODY(NEG) {
    PUSH_U(0 - POP_U());
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
    PUSH_F(-POP_F());
    NEXT();
}

BODY(FSQRT) {
    PUSH_F(__builtin_sqrt(POP_F()));
    NEXT();
}

COMPARE_FLOAT(FEQ, ==)
COMPARE_FLOAT(FNE, !=)
COMPARE_FLOAT(FLT, <)
COMPARE_FLOAT(FLE, <=)
COMPARE_FLOAT(FGT, >)
COMPARE_FLOAT(FGE, >=)

BODY(ITOF) {
    PUSH_F((double)POP_I());
    NEXT();
}

/* Truncation toward zero, saturating; NaN gives 0. */
BODY(FTOI) {
    double x = POP_F();
    int64_t r;
    if (UNLIKELY(x != x)) {
        r = 0;
    } else if (UNLIKELY(x >= 9223372036854775808.0)) {
        r = INT64_MAX;
    } else if (UNLIKELY(x <= -9223372036854775808.0)) {
        r = INT64_MIN;
    } else {
        r = (int64_t)x;
    }
    PUSH_I(r);
    NEXT();
}

BODY(MLOAD) {
    uint64_t index = POP_U();
    if (UNLIKELY(index >= (uint64_t)MEMORY_SIZE)) {
        PUSH_U(index);
        FAIL(VM_ERR_MEM_RANGE);
    }
    PUSH(MEMORY[index]);
    NEXT();
}

/* Stack: ... index value  ->  ... */
BODY(MSTORE) {
    Slot value = POP();
    uint64_t index = POP_U();
    if (UNLIKELY(index >= (uint64_t)MEMORY_SIZE)) {
        PUSH_U(index);
        PUSH(value);
        FAIL(VM_ERR_MEM_RANGE);
    }
    MEMORY[index] = value;
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
    SPILL();
    int64_t info = OPARG1;
    if (UNLIKELY(state->depth >= state->max_depth)) {
        FAIL(VM_ERR_CALL_DEPTH);
    }
    if (UNLIKELY(CALL_NEED(info) > STACK_ROOM())) {
        FAIL(VM_ERR_STACK_OVERFLOW);
    }
    Frame *f = &state->frames[state->depth++];
    f->ret_pc = POSITION + 1;
    f->ret_code = RETURN_CODE;
    f->fp = CALLER_FP;
    fp = sp - CALL_NPARAMS(info);
    for (int64_t n = CALL_NEXTRA(info); n > 0; n--) {
        (sp++)->i = 0;
    }
    ENTER_CALLEE();
}

/* The results move down to where the callee's locals began.  One result,
 * the usual case, moves straight from where it is (a cached register); what
 * the callee left below it is dropped. */
BODY(RET) {
    int64_t n = OPARG;
    if (LIKELY(n == 1)) {
        Slot result = POP();
        SPILL();
        fp[0] = result;
    } else {
        SPILL();
        for (int64_t k = 0; k < n; k++) {
            fp[k] = sp[k - n];
        }
    }
    Frame *f = &state->frames[--state->depth];
    sp = fp + n;
    fp = f->fp;
    RETURN_TO(f);
}

BODY(HALT) {
    LEAVE(VM_HALTED, POSITION);
}

BODY(PRINT_INT) {
    int64_t v = POP_I();
    if (HELPER(print_int)(state, v)) {
        PUSH_I(v);
        FAIL(VM_ERR_OUTPUT);
    }
    NEXT();
}

BODY(PRINT_FLOAT) {
    double v = POP_F();
    if (HELPER(print_float)(state, v, OPARG)) {
        PUSH_F(v);
        FAIL(VM_ERR_OUTPUT);
    }
    NEXT();
}

BODY(PRINT_BYTE) {
    int64_t v = POP_I();
    if (HELPER(print_byte)(state, v)) {
        PUSH_I(v);
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
    if (UNLIKELY(POP_I() != 0)) {
        SIDE_EXIT();
    }
    NEXT();
}

BODY(GUARD_NONZERO) {
    if (UNLIKELY(POP_I() == 0)) {
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

/* Bounds-check hoisting (jit/codegen/passes.py, hoist-bounds): a trace
 * whose memory ops index memory with a local it never stores, plus a
 * constant, checks the extremes once on the way in (CHECK_INDEX: to the
 * step's target, the trace with its checks, when local OPARG plus OPARG1
 * is out of range), and its unchecked copy runs the *_IN_RANGE ops, which
 * are MLOAD and MSTORE without the check. */
BODY(CHECK_INDEX) {
    if (UNLIKELY((uint64_t)LOCAL0.i + (uint64_t)OPARG1 >= (uint64_t)MEMORY_SIZE)) {
        JUMP();
    }
    NEXT();
}

BODY(MLOAD_IN_RANGE) {
    uint64_t index = POP_U();
    PUSH(MEMORY[index]);
    NEXT();
}

BODY(MSTORE_IN_RANGE) {
    Slot value = POP();
    uint64_t index = POP_U();
    MEMORY[index] = value;
    NEXT();
}

/* Superinstructions (jit/codegen/fuse.py): each does what the sequence it replaces
 * does, bit for bit, and none of them can fail. */

/* load a; load b */
BODY(LOAD2) {
    PUSH(LOCAL0);
    PUSH(LOCAL1);
    NEXT();
}

/* load a; push_int k; add; store a   (sub: k negated)
 * A load, an add and a store, as the ops it stands for make them, and not
 * one add to memory, which a processor that hands a stored local to its
 * next load at once (memory renaming) does not do for an add's store. */
BODY(INC_LOCAL) {
    uint64_t value = LOCAL0.u;
    UNFOLDED(value);
    LOCAL0.u = value + (uint64_t)OPARG1;
    NEXT();
}

/* load a; push_int k; add   (sub: k negated) */
BODY(LOAD_ADDK) {
    PUSH_U(LOCAL0.u + (uint64_t)OPARG1);
    NEXT();
}

/* push_int k; add   (sub: k negated) */
BODY(ADDK) {
    PUSH_U(POP_U() + (uint64_t)OPARG);
    NEXT();
}

/* store a; load b */
BODY(STORE_LOAD) {
    LOCAL0 = POP();
    PUSH(LOCAL1);
    NEXT();
}

/* The float ones: an operation's operands and result cross between
 * register files once, where the sequence moved each value across on its
 * own, and a local is an operand straight from memory. */

/* load a; load b; fadd (fsub, fmul, fdiv) */
#define FLOAT_LOCALS(NAME, op)                  \
    BODY(NAME##_LL) {                           \
        PUSH_F(LOCAL0.f op LOCAL1.f);           \
        NEXT();                                 \
    }                                           \
    /* load a; fadd (...) */                    \
    BODY(NAME##_L) {                            \
        double b = LOCAL0.f;                    \
        double a = POP_F();                     \
        PUSH_F(a op b);                         \
        NEXT();                                 \
    }

FLOAT_LOCALS(FADD, +)
FLOAT_LOCALS(FSUB, -)
FLOAT_LOCALS(FMUL, *)
FLOAT_LOCALS(FDIV, /)

/* fmul; fadd   (two roundings, as the sequence: stencils are built with -ffp-contract=off) */
BODY(FMUL_FADD) {
    double b = POP_F();
    double a = POP_F();
    double product = a * b;
    PUSH_F(POP_F() + product);
    NEXT();
}

/* A comparison and the branch on it (eq ne lt le gt ge: the signed
 * comparisons of COMPARE_INT), without the 0/1 in between:
 *   lt; jnz L   is JLT L        lt; jz L   is JGE L (the opposite)
 *   lt; guard_nonzero  is GUARD_LT (leave unless a < b)
 *   lt; guard_zero     is GUARD_GE */
#define COMPARE_BRANCH(COND, op)                \
    BODY(J##COND) {                             \
        int64_t b = POP_I();                    \
        int64_t a = POP_I();                    \
        if (a op b) {                           \
            JUMP();                             \
        }                                       \
        NEXT();                                 \
    }                                           \
    BODY(GUARD_##COND) {                        \
        int64_t b = POP_I();                    \
        int64_t a = POP_I();                    \
        if (UNLIKELY(!(a op b))) {              \
            SIDE_EXIT();                        \
        }                                       \
        NEXT();                                 \
    }

COMPARE_BRANCH(EQ, ==)
COMPARE_BRANCH(NE, !=)
COMPARE_BRANCH(LT, <)
COMPARE_BRANCH(LE, <=)
COMPARE_BRANCH(GT, >)
COMPARE_BRANCH(GE, >=)

/* Locals kept in registers (vm.h's LOCAL_REGS of them): the `registers`
 * pass (jit/codegen/passes.py) fills LOCAL_REG(j) from a local where code
 * is entered, reads and writes the register in place of the local in
 * between, and spills it back to the local before code leaves for tier 1,
 * another trace or a call.  Only the stencils have the registers
 * (template.c defines LOCAL_REG); nothing the interpreters or the LLVM
 * peer run holds these ops (programs may not use them: the verifier; the
 * peer's lowering refuses them), so there they are unreachable. */
#ifdef LOCAL_REG
#define REGISTER_LOCAL(j)                       \
    BODY(LOAD_R##j) {                           \
        PUSH(LOCAL_REG(j));                     \
        NEXT();                                 \
    }                                           \
    BODY(STORE_R##j) {                          \
        LOCAL_REG(j) = POP();                   \
        NEXT();                                 \
    }                                           \
    BODY(FILL_R##j) {                           \
        LOCAL_REG(j) = LOCAL0;                  \
        NEXT();                                 \
    }                                           \
    BODY(SPILL_R##j) {                          \
        LOCAL0 = LOCAL_REG(j);                  \
        NEXT();                                 \
    }                                           \
    BODY(INC_R##j) {                            \
        LOCAL_REG(j).u += (uint64_t)OPARG;      \
        NEXT();                                 \
    }
#else
#define REGISTER_LOCAL(j)                       \
    BODY(LOAD_R##j) { __builtin_unreachable(); } \
    BODY(STORE_R##j) { __builtin_unreachable(); } \
    BODY(FILL_R##j) { __builtin_unreachable(); } \
    BODY(SPILL_R##j) { __builtin_unreachable(); } \
    BODY(INC_R##j) { __builtin_unreachable(); }
#endif

REGISTER_LOCAL(0)
REGISTER_LOCAL(1)
REGISTER_LOCAL(2)
