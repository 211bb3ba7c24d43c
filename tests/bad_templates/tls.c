/* expect: thread-local storage */
#include "vm.h"
static _Thread_local int64_t counter = 7;
PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);
PRESERVE_NONE void _JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    sp[-1].i = ++counter;
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
