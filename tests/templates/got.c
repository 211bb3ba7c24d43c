/* Golden: with -fno-plt the jump goes through a GOT entry, which processing
 * synthesises in the stencil's data.
 * flags: -fno-plt
 */
#include "vm.h"

PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);

PRESERVE_NONE void
_JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    sp[-1].i ^= 1;
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
