/* Golden: an operand hole and a removed final jump. */
#include "vm.h"

extern char _JIT_OPERAND0[];
PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);

PRESERVE_NONE void
_JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    sp[-1].u += (uint64_t)(uintptr_t)_JIT_OPERAND0;
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
