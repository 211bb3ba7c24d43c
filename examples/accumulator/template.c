/* One op as one stencil (-DTHIS_OP=OP_<NAME>): its operand is a hole. */
#include "state.h"
#include "helpers.h"

extern char _JIT_OPERAND0[];
__attribute__((preserve_none)) void _JIT_CONTINUE(AccState *);
__attribute__((preserve_none)) void _JIT_TARGET(AccState *);
extern char _JIT_HELPER_mix[];

#define ARG                                          \
    ({                                               \
        uint64_t v_ = (uint64_t)(uintptr_t)_JIT_OPERAND0; \
        __asm__("" : "+r"(v_));                      \
        v_;                                          \
    })
#define BODY(name) case OP_##name:
#define NEXT() __attribute__((musttail)) return _JIT_CONTINUE(s)
#define JUMP() __attribute__((musttail)) return _JIT_TARGET(s)
#define HALT() return
#define HELPER(name) ((__typeof__(&name))(void *)_JIT_HELPER_##name)

__attribute__((preserve_none)) void
_JIT_ENTRY(AccState *s)
{
    switch (THIS_OP) {
#include "bodies.h"
    }
    __builtin_unreachable();
}
