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
 * Stack caching: -DCACHE_IN=1 builds the variant entered with the top of
 * the operand stack in the `tos` argument (a pinned register) rather than in
 * memory, and -DCACHE_OUT=1 the one that leaves it there for the next
 * stencil.  `cached` says where the top is while the body runs; it is a
 * constant on every path, so clang folds POP, PUSH and SPILL into plain
 * register moves and only the memory traffic that is really needed stays.
 * Jumps, side exits, calls and returns always leave with the whole stack in
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

extern char _JIT_OPERAND0[];
extern char _JIT_OPERAND1[];
extern char _JIT_POSITION[];
extern char _JIT_CONTINUE_ADDR[];
PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *, uint64_t);
PRESERVE_NONE void _JIT_TARGET(VMState *, Slot *, Slot *, uint64_t);
PRESERVE_NONE void _JIT_EXIT(VMState *, Slot *, Slot *, uint64_t);

#define DECLARE_HELPER(name) extern char _JIT_HELPER_##name[];
HELPERS(DECLARE_HELPER)
#undef DECLARE_HELPER

#define VALUE(symbol) ((int64_t)(uintptr_t)(symbol))
#define OPARG VALUE(_JIT_OPERAND0)
#define OPARG1 VALUE(_JIT_OPERAND1)
#define POSITION VALUE(_JIT_POSITION)
#define BODY(name) case OP_##name:
#define STACK_CACHE
#define POP() (cached ? (cached = 0, top) : *--sp)
#define PUSH(v)                 \
    do {                        \
        Slot pushed_ = (v);     \
        if (cached) {           \
            *sp++ = top;        \
        }                       \
        top = pushed_;          \
        cached = 1;             \
    } while (0)
#define SPILL()                 \
    do {                        \
        if (cached) {           \
            *sp++ = top;        \
            cached = 0;         \
        }                       \
    } while (0)
/* Put the top where the continuation expects it. */
#define SETTLE(want)                       \
    do {                                   \
        if (!(want)) {                     \
            SPILL();                       \
        } else if (!cached) {              \
            top = *--sp;                   \
            cached = 1;                    \
        }                                  \
    } while (0)
/* With the top in memory, `tos` passes on untouched: no register moves. */
#define GO(fn, want)                                          \
    do {                                                      \
        SETTLE(want);                                         \
        MUSTTAIL return fn(state, sp, fp, (want) ? top.u : tos); \
    } while (0)
#define NEXT() GO(_JIT_CONTINUE, CACHE_OUT)
#define JUMP() GO(_JIT_TARGET, 0)
#define SIDE_EXIT() GO(_JIT_EXIT, 0)
#define ENTER_CALLEE() JUMP()
#define RETURN_CODE ((void *)_JIT_CONTINUE_ADDR)
#define RETURN_TO(f)                                                  \
    do {                                                              \
        if ((f)->ret_code) {                                          \
            GO(((jit_fn)(f)->ret_code), 0);                           \
        }                                                             \
        state->exit_index = -1; /* not a side exit: a return to tier 1 */ \
        LEAVE(VM_EXITED, (f)->ret_pc);                                \
    } while (0)
#define HELPER(name) ((__typeof__(&name))(void *)_JIT_HELPER_##name)

PRESERVE_NONE void
_JIT_ENTRY(VMState *state, Slot *sp, Slot *fp, uint64_t tos)
{
    Slot top = {.u = tos};
    int cached = CACHE_IN;
    switch (THIS_OP) {
#include "bodies.h"
    }
    __builtin_unreachable();
}
