/* Each eBPF op's semantics, written once.  template.c makes one stencil of
 * each body; interp.c makes a C interpreter of all of them.  The includer
 * defines:
 *   BODY(NAME)       the start of op NAME's body
 *   DST, SRC         the registers, as byte offsets into s->r (X(DST) is the
 *                    register itself; small constants make short code)
 *   OFF, IMM         the offset and the immediate (sign-extended to 64 bits;
 *                    a LDDW's whole constant)
 *   R(n)             register n of state `s`
 *   NEXT(), JUMP()   go on with the next instruction / the jump target
 *   EXIT_PROGRAM()   end the run (r0 holds the result)
 *   FAIL(code)       end the run with runtime error `code` (state.h's ERR_*)
 *   RETURN_POINT     a value that GO_RETURN(v) resumes after this instruction
 */

#define X(offset) (*(uint64_t *)((char *)s->r + (offset)))

#define ALU_K(NAME, EXPR64, EXPR32)                                                 \
    BODY(NAME##64_K) { uint64_t a = X(DST), b = (uint64_t)IMM; X(DST) = (EXPR64); NEXT(); } \
    BODY(NAME##32_K) { uint32_t a = (uint32_t)X(DST), b = (uint32_t)IMM; X(DST) = (uint32_t)(EXPR32); NEXT(); }
#define ALU_X(NAME, EXPR64, EXPR32)                                                 \
    BODY(NAME##64_X) { uint64_t a = X(DST), b = X(SRC); X(DST) = (EXPR64); NEXT(); } \
    BODY(NAME##32_X) { uint32_t a = (uint32_t)X(DST), b = (uint32_t)X(SRC); X(DST) = (uint32_t)(EXPR32); NEXT(); }
#define ALU(NAME, EXPR64, EXPR32) ALU_K(NAME, EXPR64, EXPR32) ALU_X(NAME, EXPR64, EXPR32)

ALU(ADD, a + b, a + b)
ALU(SUB, a - b, a - b)
ALU(MUL, a * b, a * b)
ALU(DIV, div64(a, b), div32(a, b))
ALU(SDIV, sdiv64(a, b), sdiv32(a, b))
ALU(MOD, mod64(a, b), mod32(a, b))
ALU(SMOD, smod64(a, b), smod32(a, b))
ALU(OR, a | b, a | b)
ALU(AND, a & b, a & b)
ALU(XOR, a ^ b, a ^ b)
ALU(LSH, a << (b & 63), a << (b & 31))
ALU(RSH, a >> (b & 63), a >> (b & 31))
ALU(ARSH, arsh64(a, b), arsh32(a, b))
ALU_K(MOV, ((void)a, b), ((void)a, b))
BODY(MOV64_X) { X(DST) = X(SRC); NEXT(); }
BODY(MOV32_X) { X(DST) = (uint32_t)X(SRC); NEXT(); }
BODY(MOVSX64_8) { X(DST) = (uint64_t)(int64_t)(int8_t)X(SRC); NEXT(); }
BODY(MOVSX64_16) { X(DST) = (uint64_t)(int64_t)(int16_t)X(SRC); NEXT(); }
BODY(MOVSX64_32) { X(DST) = (uint64_t)(int64_t)(int32_t)X(SRC); NEXT(); }
BODY(MOVSX32_8) { X(DST) = (uint32_t)(int32_t)(int8_t)X(SRC); NEXT(); }
BODY(MOVSX32_16) { X(DST) = (uint32_t)(int32_t)(int16_t)X(SRC); NEXT(); }
BODY(NEG64) { X(DST) = 0 - X(DST); NEXT(); }
BODY(NEG32) { X(DST) = (uint32_t)(0 - (uint32_t)X(DST)); NEXT(); }

/* Byte order: the machine is little-endian, so LE only truncates. */
BODY(LE16) { X(DST) = (uint16_t)X(DST); NEXT(); }
BODY(LE32) { X(DST) = (uint32_t)X(DST); NEXT(); }
BODY(LE64) { NEXT(); }
BODY(BE16) { X(DST) = __builtin_bswap16((uint16_t)X(DST)); NEXT(); }
BODY(BE32) { X(DST) = __builtin_bswap32((uint32_t)X(DST)); NEXT(); }
BODY(BE64) { X(DST) = __builtin_bswap64(X(DST)); NEXT(); }
BODY(BSWAP16) { X(DST) = __builtin_bswap16((uint16_t)X(DST)); NEXT(); }
BODY(BSWAP32) { X(DST) = __builtin_bswap32((uint32_t)X(DST)); NEXT(); }
BODY(BSWAP64) { X(DST) = __builtin_bswap64(X(DST)); NEXT(); }

#define JCOND(NAME, COND)                                                              \
    BODY(NAME##64_K) { uint64_t a = X(DST), b = (uint64_t)IMM; if (COND) JUMP(); NEXT(); } \
    BODY(NAME##64_X) { uint64_t a = X(DST), b = X(SRC); if (COND) JUMP(); NEXT(); }        \
    BODY(NAME##32_K) { uint32_t a = (uint32_t)X(DST), b = (uint32_t)IMM; if (COND) JUMP(); NEXT(); } \
    BODY(NAME##32_X) { uint32_t a = (uint32_t)X(DST), b = (uint32_t)X(SRC); if (COND) JUMP(); NEXT(); }
#define SIGNED(x) (sizeof(x) == 8 ? (int64_t)(x) : (int64_t)(int32_t)(x))

JCOND(JEQ, a == b)
JCOND(JNE, a != b)
JCOND(JGT, a > b)
JCOND(JGE, a >= b)
JCOND(JLT, a < b)
JCOND(JLE, a <= b)
JCOND(JSET, (a & b) != 0)
JCOND(JSGT, SIGNED(a) > SIGNED(b))
JCOND(JSGE, SIGNED(a) >= SIGNED(b))
JCOND(JSLT, SIGNED(a) < SIGNED(b))
JCOND(JSLE, SIGNED(a) <= SIGNED(b))
BODY(JA) { JUMP(); }
BODY(JA32) { JUMP(); }

/* Helpers, by number (semantics.h: call_helper). */
#define CALL_HELPER_NUMBERED(id)                      \
    do {                                              \
        int done_ = call_helper(s, (id));             \
        if (done_ == HELPER_EXIT) {                   \
            EXIT_PROGRAM();                           \
        }                                             \
        if (UNLIKELY(done_ == HELPER_FAILED)) {       \
            FAIL(s->error);                           \
        }                                             \
        NEXT();                                       \
    } while (0)

BODY(CALL_HELPER) { CALL_HELPER_NUMBERED((uint64_t)(uint32_t)IMM); }
BODY(CALLX) { CALL_HELPER_NUMBERED(X(DST)); }
BODY(CALL_RUNTIME) { s->aux = (uint32_t)IMM; FAIL(ERR_RUNTIME_CALL); }

/* A local call saves the return point, r6-r9 and r10, and gives the callee
 * a frame of its own below the caller's. */
BODY(CALL_LOCAL)
{
    if (UNLIKELY(s->depth >= MAX_FRAMES - 1)) {
        FAIL(ERR_CALL_DEPTH);
    }
    uint64_t *f = &s->frames[s->depth * FRAME_WORDS];
    f[0] = RETURN_POINT;
    f[1] = R(6);
    f[2] = R(7);
    f[3] = R(8);
    f[4] = R(9);
    f[5] = R(10);
    s->depth++;
    R(10) -= STACK_SIZE;
    JUMP();
}

BODY(EXIT)
{
    if (s->depth == 0) {
        EXIT_PROGRAM();
    }
    s->depth--;
    uint64_t *f = &s->frames[s->depth * FRAME_WORDS];
    R(6) = f[1];
    R(7) = f[2];
    R(8) = f[3];
    R(9) = f[4];
    R(10) = f[5];
    GO_RETURN(f[0]);
}

BODY(FELL_OFF) { FAIL(ERR_FELL_OFF); }

/* Placed where a backward jump lands: every loop's way round passes one, so
 * a program that never ends stops with an error instead. */
BODY(TICK)
{
    if (UNLIKELY(s->budget == 0)) {
        FAIL(ERR_BUDGET);
    }
    s->budget--;
    NEXT();
}

BODY(LDDW) { X(DST) = (uint64_t)IMM; NEXT(); }
/* A map's handle, or the address of its first value plus an offset, by
 * descriptor (src 1, 2) or by index (src 5, 6: here the same numbers): the
 * front end puts the offset from mapdefs (handles) or maps (values) in IMM. */
BODY(LDDW_MAP) BODY(LDDW_MAP_BY_IDX) { X(DST) = s->mapdefs + (uint64_t)IMM; NEXT(); }
BODY(LDDW_MAP_VALUE) BODY(LDDW_MAP_VALUE_BY_IDX) { X(DST) = s->maps + (uint64_t)IMM; NEXT(); }

#define CHECKED(ADDR, SIZE)                                          \
    ({                                                              \
        uint64_t addr_ = (ADDR);                                    \
        if (UNLIKELY(!in_bounds(s, addr_, (SIZE)))) {               \
            s->aux = addr_;                                         \
            s->aux2 = (SIZE);                                       \
            FAIL(ERR_MEMORY);                                       \
        }                                                           \
        addr_;                                                      \
    })
#define ALIGNED(ADDR, SIZE)                                         \
    ({                                                              \
        uint64_t at_ = CHECKED(ADDR, SIZE);                         \
        if (UNLIKELY(at_ & ((SIZE) - 1))) {                         \
            s->aux = at_;                                           \
            s->aux2 = (SIZE);                                       \
            FAIL(ERR_MISALIGNED);                                   \
        }                                                           \
        at_;                                                        \
    })

BODY(LDXB) { X(DST) = *(const uint8_t *)CHECKED(X(SRC) + OFF, 1); NEXT(); }
BODY(LDXH) { X(DST) = *(const u16u *)CHECKED(X(SRC) + OFF, 2); NEXT(); }
BODY(LDXW) { X(DST) = *(const u32u *)CHECKED(X(SRC) + OFF, 4); NEXT(); }
BODY(LDXDW) { X(DST) = *(const u64u *)CHECKED(X(SRC) + OFF, 8); NEXT(); }
BODY(LDXSB) { X(DST) = (uint64_t)(int64_t)*(const s8u *)CHECKED(X(SRC) + OFF, 1); NEXT(); }
BODY(LDXSH) { X(DST) = (uint64_t)(int64_t)*(const s16u *)CHECKED(X(SRC) + OFF, 2); NEXT(); }
BODY(LDXSW) { X(DST) = (uint64_t)(int64_t)*(const s32u *)CHECKED(X(SRC) + OFF, 4); NEXT(); }
BODY(STB) { *(uint8_t *)CHECKED(X(DST) + OFF, 1) = (uint8_t)IMM; NEXT(); }
BODY(STH) { *(u16u *)CHECKED(X(DST) + OFF, 2) = (uint16_t)IMM; NEXT(); }
BODY(STW) { *(u32u *)CHECKED(X(DST) + OFF, 4) = (uint32_t)IMM; NEXT(); }
BODY(STDW) { *(u64u *)CHECKED(X(DST) + OFF, 8) = (uint64_t)IMM; NEXT(); }
BODY(STXB) { *(uint8_t *)CHECKED(X(DST) + OFF, 1) = (uint8_t)X(SRC); NEXT(); }
BODY(STXH) { *(u16u *)CHECKED(X(DST) + OFF, 2) = (uint16_t)X(SRC); NEXT(); }
BODY(STXW) { *(u32u *)CHECKED(X(DST) + OFF, 4) = (uint32_t)X(SRC); NEXT(); }
BODY(STXDW) { *(u64u *)CHECKED(X(DST) + OFF, 8) = X(SRC); NEXT(); }

/* Atomics: naturally aligned, or a runtime error (as the kernel requires). */
#define ATOMIC(W, T, NAME, BUILTIN)                                                        \
    BODY(ATOMIC##W##_##NAME) { BUILTIN((T *)ALIGNED(X(DST) + OFF, sizeof(T)), (T)X(SRC), __ATOMIC_SEQ_CST); NEXT(); } \
    BODY(ATOMIC##W##_FETCH_##NAME) { X(SRC) = BUILTIN((T *)ALIGNED(X(DST) + OFF, sizeof(T)), (T)X(SRC), __ATOMIC_SEQ_CST); NEXT(); }
#define ATOMICS(W, T)                                                                      \
    ATOMIC(W, T, ADD, __atomic_fetch_add)                                                  \
    ATOMIC(W, T, OR, __atomic_fetch_or)                                                    \
    ATOMIC(W, T, AND, __atomic_fetch_and)                                                  \
    ATOMIC(W, T, XOR, __atomic_fetch_xor)                                                  \
    BODY(ATOMIC##W##_XCHG) { X(SRC) = __atomic_exchange_n((T *)ALIGNED(X(DST) + OFF, sizeof(T)), (T)X(SRC), __ATOMIC_SEQ_CST); NEXT(); } \
    BODY(ATOMIC##W##_CMPXCHG)                                                              \
    {                                                                                      \
        T *p_ = (T *)ALIGNED(X(DST) + OFF, sizeof(T));                                     \
        T expected_ = (T)R(0);                                                             \
        __atomic_compare_exchange_n(p_, &expected_, (T)X(SRC), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
        R(0) = expected_;                                                                  \
        NEXT();                                                                            \
    }

ATOMICS(32, uint32_t)
ATOMICS(64, uint64_t)
