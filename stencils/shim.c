/* The way in: a normal C-ABI function that enters machine code with the
 * preserve_none convention.  Every stencil ends in a tail call or a return,
 * so the return that ends a run comes back here, with the state saved. */
#include "vm.h"

int64_t
_JIT_ENTRY(VMState *state)
{
    ((jit_fn)state->entry)(state, state->sp, state->fp, 0, 0, state->mem, (uint64_t)state->mem_size, 0, 0, 0,
                           0.0, 0.0);
    return state->status;
}
