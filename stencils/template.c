/* One micro-op as one stencil.  Compile with -DTHIS_OP=OP_<NAME>: the switch on a
 * constant leaves only that op's body, and every runtime value it needs is
 * the address of an extern _JIT_* symbol, which becomes a hole to patch.
 *
 *   _JIT_OPERAND0/1     the instruction's operands
 *   _JIT_POSITION       its IR position (for error reports and call frames)
 *   _JIT_CONTINUE       code of the next instruction (jumped to)
 *   _JIT_CONTINUE_ADDR  the same address, as a value (return addresses)
 *   _JIT_TARGET         code of the jump target / the called function
 *   _JIT_EXIT           code a failing guard jumps to
 *   _JIT_HELPER_<name>  a helper's address
 *
 * Values are declared as arrays so that the code model treats them as data
 * and materialises full 64-bit addresses (movabs; movz/movk).  Jumps are
 * declared as functions so that musttail gives a direct branch.
 *
 * Stack caching: -DCACHE_IN=n builds the variant entered with the top n
 * slots of the operand stack (n = 0, 1 or 2) in the `tos0` (the top) and
 * `tos1` arguments, pinned registers, rather than in memory; -DCACHE_OUT=n
 * the one that leaves n slots there for the next stencil.  CACHE_IN_FLOAT
 * (CACHE_OUT_FLOAT) is a mask of those slots that come in (go out) in
 * `ftos0` (bit 0, the top) and `ftos1` (bit 1) instead, float registers
 * (xmm0/xmm1, d0/d1), so that a float passed from one float op to the next
 * never moves between register files.  A slot is 64 bits whichever
 * register holds it: the file is only where it is cheapest, never a type.
 * Locals the `registers` pass keeps in registers come in `reg0`..`reg2`
 * (LOCAL_REG(j) in bodies.h) and go on to the next stencil, like `mem`
 * and `mem_size`; only STORE_Rj, FILL_Rj and INC_Rj change them.
 * `cached` counts the slots held in t0/t1 while the body runs; it is a
 * constant on every path, so clang folds POP, PUSH and SPILL into register
 * moves and only the memory traffic that is really needed stays.  Jumps,
 * side exits, calls and returns always leave with the whole stack in
 * memory: code is only ever entered that way at a jump target.
 */
#include "vm.h"
#include "helpers.h"
#include "opcodes.h"

#ifndef CACHE_IN
#define CACHE_IN 0
#endif
#ifndef CACHE_OUT
#define CACHE_OUT 0
#endif
#ifndef CACHE_IN_FLOAT
#define CACHE_IN_FLOAT 0
#endif
#ifndef CACHE_OUT_FLOAT
#define CACHE_OUT_FLOAT 0
#endif

extern char _JIT_OPERAND0[];
extern char _JIT_OPERAND1[];
/* The same operands times 8: a local's byte offset.  Declared as scalars,
 * and small data on x86-64 (opset.toml), they become 32-bit displacements
 * in the instructions that reach the local (R_X86_64_32S), where an index
 * would be a 64-bit constant loaded first. */
extern char _JIT_OPERAND0_X8;
extern char _JIT_OPERAND1_X8;
extern char _JIT_POSITION[];
extern char _JIT_CONTINUE_ADDR[];
#define JIT_ARGS VMState *, Slot *, Slot *, uint64_t, uint64_t, Slot *, uint64_t, uint64_t, uint64_t, uint64_t, double, double
PRESERVE_NONE void _JIT_CONTINUE(JIT_ARGS);
PRESERVE_NONE void _JIT_TARGET(JIT_ARGS);
PRESERVE_NONE void _JIT_EXIT(JIT_ARGS);

#define DECLARE_HELPER(name) extern char _JIT_HELPER_##name[];
HELPERS(DECLARE_HELPER)
#undef DECLARE_HELPER

#define VALUE(symbol) ((int64_t)(uintptr_t)(symbol))
#define OPARG VALUE(_JIT_OPERAND0)
#define OPARG1 VALUE(_JIT_OPERAND1)
#ifndef LOCALS_BY_INDEX /* (bench --ablation's "off": bodies.h's fp[OPARG]) */
#define LOCAL_AT(symbol) (*(Slot *)((char *)fp + (uintptr_t)&(symbol)))
#define LOCAL0 LOCAL_AT(_JIT_OPERAND0_X8)
#define LOCAL1 LOCAL_AT(_JIT_OPERAND1_X8)
#endif
#define POSITION VALUE(_JIT_POSITION)
#ifndef MEMORY_FROM_STATE /* (bench --ablation's "off": bodies.h's state->mem and state->mem_size) */
#define MEMORY mem
#define MEMORY_SIZE mem_size
#endif
#define BODY(name) case OP_##name:
#define LOCAL_REG(j) l##j
#define UNFOLDED(value) __asm__("" : "+r"(value))
#define STACK_CACHE
#define POP()                           \
    ({                                  \
        Slot popped_;                   \
        if (cached == 2) {              \
            popped_ = t0;               \
            t0 = t1;                    \
        } else if (cached == 1) {       \
            popped_ = t0;               \
        } else {                        \
            popped_ = *--sp;            \
        }                               \
        cached -= cached > 0;           \
        popped_;                        \
    })
#define PUSH(v)                         \
    do {                                \
        Slot pushed_ = (v);             \
        if (cached == 2) {              \
            *sp++ = t1;                 \
        }                               \
        if (cached >= 1) {              \
            t1 = t0;                    \
        }                               \
        t0 = pushed_;                   \
        cached += cached < 2;           \
    } while (0)
/* Put the deepest cached slot back in memory. */
#define SPILL_ONE()                     \
    do {                                \
        *sp++ = cached == 2 ? t1 : t0;  \
        cached--;                       \
    } while (0)
#define SPILL()                         \
    do {                                \
        while (cached > 0) {            \
            SPILL_ONE();                \
        }                               \
    } while (0)
/* Leave `want` slots cached, as the continuation expects. */
#define SETTLE(want)                    \
    do {                                \
        while (cached > (want)) {       \
            SPILL_ONE();                \
        }                               \
        if (cached == 0 && (want) >= 1) { \
            t0 = *--sp;                 \
            cached = 1;                 \
        }                               \
        if (cached == 1 && (want) >= 2) { \
            t1 = *--sp;                 \
            cached = 2;                 \
        }                               \
    } while (0)
/* Leave `want` slots cached, those in the mask `fl` in float registers.  A
 * register the continuation does not read passes on untouched: no moves. */
#define GO(fn, want, fl)                                                                             \
    do {                                                                                             \
        SETTLE(want);                                                                                \
        MUSTTAIL return fn(state, sp, fp, (want) >= 1 && !((fl) & 1) ? t0.u : tos0,                  \
                           (want) >= 2 && !((fl) & 2) ? t1.u : tos1, mem, mem_size, l0.u, l1.u, l2.u, \
                           (want) >= 1 && ((fl) & 1) ? t0.f : ftos0, (want) >= 2 && ((fl) & 2) ? t1.f : ftos1); \
    } while (0)
#define NEXT() GO(_JIT_CONTINUE, CACHE_OUT, CACHE_OUT_FLOAT)
#define JUMP() GO(_JIT_TARGET, 0, 0)
#define SIDE_EXIT() GO(_JIT_EXIT, 0, 0)
#define ENTER_CALLEE() JUMP()
#define RETURN_CODE ((void *)_JIT_CONTINUE_ADDR)
#define RETURN_TO(f)                                                  \
    do {                                                              \
        if ((f)->ret_code) {                                          \
            GO(((jit_fn)(f)->ret_code), 0, 0);                           \
        }                                                             \
        state->exit_index = -1; /* not a side exit: a return to tier 1 */ \
        LEAVE(VM_EXITED, (f)->ret_pc);                                \
    } while (0)
#define HELPER(name) ((__typeof__(&name))(void *)_JIT_HELPER_##name)

PRESERVE_NONE void
_JIT_ENTRY(VMState *state, Slot *sp, Slot *fp, uint64_t tos0, uint64_t tos1, Slot *mem, uint64_t mem_size,
           uint64_t reg0, uint64_t reg1, uint64_t reg2, double ftos0, double ftos1)
{
    Slot t0, t1;
    Slot l0 = {.u = reg0}, l1 = {.u = reg1}, l2 = {.u = reg2};
    if (CACHE_IN_FLOAT & 1) {
        t0.f = ftos0;
    } else {
        t0.u = tos0;
    }
    if (CACHE_IN_FLOAT & 2) {
        t1.f = ftos1;
    } else {
        t1.u = tos1;
    }
    int cached = CACHE_IN;
    switch (THIS_OP) {
#include "bodies.h"
    }
    __builtin_unreachable();
}
