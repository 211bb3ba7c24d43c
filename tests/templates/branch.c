/* Golden: a conditional jump, whose tail is inverted or retargeted so that
 * the continuation falls through. */
#include "vm.h"

PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);
PRESERVE_NONE void _JIT_TARGET(VMState *, Slot *, Slot *);

PRESERVE_NONE void
_JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    if ((--sp)->i < 0) {
        MUSTTAIL return _JIT_TARGET(state, sp, fp);
    }
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
