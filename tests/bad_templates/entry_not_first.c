/* expect: _JIT_ENTRY is at code offset */
#include "vm.h"
PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);
__attribute__((noinline)) int64_t twice(int64_t x) { return 2 * x; }
PRESERVE_NONE void _JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    sp[-1].i = twice(sp[-1].i);
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
