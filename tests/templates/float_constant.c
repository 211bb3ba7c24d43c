/* Golden: constants in read-only data, reached through a data hole. */
#include "vm.h"

PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);

PRESERVE_NONE void
_JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    sp[-1].f = sp[-1].f * 3.25 + 0.1;
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
