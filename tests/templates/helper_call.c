/* Golden: a helper call and an early return to the shim. */
#include "vm.h"
#include "helpers.h"

extern char _JIT_HELPER_print_int[];
PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);

PRESERVE_NONE void
_JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    if (((__typeof__(&print_int))(void *)_JIT_HELPER_print_int)(state, (--sp)->i)) {
        state->status = VM_ERROR;
        return;
    }
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
