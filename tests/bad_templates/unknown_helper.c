/* expect: names unknown helper 'launch_missiles' */
#include "vm.h"
extern char _JIT_HELPER_launch_missiles[];
PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);
PRESERVE_NONE void _JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
    ((void (*)(void))(void *)_JIT_HELPER_launch_missiles)();
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
