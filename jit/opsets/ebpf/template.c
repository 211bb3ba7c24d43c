/* One eBPF op as one stencil: compile with -DTHIS_OP=OP_<NAME>.  The
 * machine state comes in a pinned register; the instruction's fields are
 * holes:
 *   _JIT_OPERAND0/1   dst and src, as byte offsets of the registers in the state
 *   _JIT_OPERAND2/3   the offset and the immediate (sign-extended)
 * The first three are small: declared as scalars, with x86-64's small-data
 * threshold raised (opset.toml), they become 32-bit displacements inside the
 * instructions that use them (R_X86_64_32S) instead of 64-bit constants
 * loaded first.  Small data has non-negative addresses, so the offset comes
 * biased (OFF_BIAS, state.h).  The immediate may take all 64 bits.
 *   _JIT_POSITION     the instruction's index (for error reports)
 *   _JIT_CONTINUE     the next instruction's code; _JIT_TARGET: the jump's
 *   _JIT_CONTINUE_ADDR the next instruction's code as a value (return points)
 */
#include "state.h"
#include "semantics.h"

extern char _JIT_OPERAND0;
extern char _JIT_OPERAND1;
extern char _JIT_OPERAND2;
extern char _JIT_OPERAND3[];
extern char _JIT_POSITION[];
extern char _JIT_CONTINUE_ADDR[];
PRESERVE_NONE void _JIT_CONTINUE(EbpfState *);
PRESERVE_NONE void _JIT_TARGET(EbpfState *);

#define VALUE(symbol) ((int64_t)(uintptr_t)(symbol))
/* An operand's value, hidden from the optimiser: C says the address of an
 * object is never 0, so without this clang drops `imm == 0` tests (and with
 * them the guard before a division by an immediate 0). */
#define OPERAND(symbol)                  \
    ({                                   \
        int64_t v_ = VALUE(symbol);      \
        __asm__("" : "+r"(v_));          \
        v_;                              \
    })
#define SMALL(symbol) ((int64_t)(uintptr_t)&(symbol))  /* (used only in addresses: no test to hide) */
#define DST SMALL(_JIT_OPERAND0)
#define SRC SMALL(_JIT_OPERAND1)
#define OFF (SMALL(_JIT_OPERAND2) - OFF_BIAS)
#define IMM OPERAND(_JIT_OPERAND3)
#define R(n) (s->r[(n)])
#define BODY(name) case OP_##name:
#define NEXT() MUSTTAIL return _JIT_CONTINUE(s)
#define JUMP() MUSTTAIL return _JIT_TARGET(s)
#define EXIT_PROGRAM()           \
    do {                         \
        s->status = ST_EXITED;   \
        return;                  \
    } while (0)
#define FAIL(code)                      \
    do {                                \
        s->status = ST_ERROR;           \
        s->error = (code);              \
        s->pc = VALUE(_JIT_POSITION);   \
        return;                         \
    } while (0)
#define RETURN_POINT ((uint64_t)(uintptr_t)_JIT_CONTINUE_ADDR)
#define GO_RETURN(v) MUSTTAIL return ((ebpf_fn)(uintptr_t)(v))(s)

PRESERVE_NONE void
_JIT_ENTRY(EbpfState *s)
{
    switch (THIS_OP) {
#include "bodies.h"
    default: {
        extern void no_body_in_bodies_h_for_this_op(void);
        no_body_in_bodies_h_for_this_op();
    }
    }
    __builtin_unreachable();
}
