/* The way in, a C-ABI function: run the code at `entry` on the state, and
 * come back when a stencil returns. */
#include "state.h"

int64_t
_JIT_ENTRY(EbpfState *s, void *entry)
{
    ((ebpf_fn)entry)(s);
    return (int64_t)s->status;
}
