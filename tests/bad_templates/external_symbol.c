/* expect: refers to external symbol 'some_libc_function', which is not a hole */
#include "vm.h"
int64_t some_libc_function(int64_t);
PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);
PRESERVE_NONE void _JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    sp[-1].i = some_libc_function(sp[-1].i);
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
