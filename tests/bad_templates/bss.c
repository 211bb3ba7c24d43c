/* expect: zero-initialised writable data (.bss) */
#include "vm.h"
static int64_t counter;
PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);
PRESERVE_NONE void _JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    sp[-1].i = ++counter;
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
