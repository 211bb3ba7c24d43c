#include "state.h"

int64_t
_JIT_ENTRY(AccState *s, void *code)
{
    ((acc_fn)code)(s);
    return (int64_t)s->halted;
}
