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
 */
#include "vm.h"
#include "helpers.h"
#include "opcodes.h"

extern char _JIT_OPERAND0[];
extern char _JIT_OPERAND1[];
extern char _JIT_POSITION[];
extern char _JIT_CONTINUE_ADDR[];
PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);
PRESERVE_NONE void _JIT_TARGET(VMState *, Slot *, Slot *);
PRESERVE_NONE void _JIT_EXIT(VMState *, Slot *, Slot *);

#define DECLARE_HELPER(name) extern char _JIT_HELPER_##name[];
HELPERS(DECLARE_HELPER)
#undef DECLARE_HELPER

#define VALUE(symbol) ((int64_t)(uintptr_t)(symbol))
#define OPARG VALUE(_JIT_OPERAND0)
#define OPARG1 VALUE(_JIT_OPERAND1)
#define POSITION VALUE(_JIT_POSITION)
#define BODY(name) case OP_##name:
#define NEXT() MUSTTAIL return _JIT_CONTINUE(state, sp, fp)
#define JUMP() MUSTTAIL return _JIT_TARGET(state, sp, fp)
#define SIDE_EXIT() MUSTTAIL return _JIT_EXIT(state, sp, fp)
#define ENTER_CALLEE() JUMP()
#define RETURN_CODE ((void *)_JIT_CONTINUE_ADDR)
#define RETURN_TO(f)                                                  \
    do {                                                              \
        if ((f)->ret_code) {                                          \
            MUSTTAIL return ((jit_fn)(f)->ret_code)(state, sp, fp);   \
        }                                                             \
        state->exit_index = -1; /* not a side exit: a return to tier 1 */ \
        LEAVE(VM_EXITED, (f)->ret_pc);                                \
    } while (0)
#define HELPER(name) ((__typeof__(&name))(void *)_JIT_HELPER_##name)

PRESERVE_NONE void
_JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    switch (THIS_OP) {
#include "bodies.h"
    }
    __builtin_unreachable();
}
