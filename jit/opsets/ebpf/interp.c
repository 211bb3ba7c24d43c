/* The C interpreter, built from the same bodies as the stencils.  It runs
 * the instruction records jit.opsets lays out: seven 64-bit fields each
 * (op, operand0-3, target, position), in step order; dst and src are the
 * registers' byte offsets, as the stencils get them. */
#include "state.h"
#include "semantics.h"

typedef struct Inst {
    int64_t op, dst, src, off, imm, target, position;
} Inst;

#define DST (in->dst)
#define SRC (in->src)
#define OFF (in->off - OFF_BIAS)
#define IMM (in->imm)
#define R(n) (s->r[(n)])
#define BODY(name) case OP_##name:
#define NEXT()          \
    do {                \
        pc++;           \
        goto dispatch;  \
    } while (0)
#define JUMP()             \
    do {                   \
        pc = in->target;   \
        goto dispatch;     \
    } while (0)
#define EXIT_PROGRAM()           \
    do {                         \
        s->status = ST_EXITED;   \
        return 0;                \
    } while (0)
#define FAIL(code)                      \
    do {                                \
        s->status = ST_ERROR;           \
        s->error = (code);              \
        s->pc = (uint64_t)in->position; \
        return 0;                       \
    } while (0)
#define RETURN_POINT ((uint64_t)(pc + 1))
#define GO_RETURN(v)            \
    do {                        \
        pc = (int64_t)(v);      \
        goto dispatch;          \
    } while (0)

int64_t
opset_interpret(EbpfState *s, const Inst *code)
{
    int64_t pc = 0;
dispatch:;
    const Inst *in = &code[pc];
    switch (in->op) {
#include "bodies.h"
    }
    __builtin_unreachable();
}
