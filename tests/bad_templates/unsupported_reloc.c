/* expect: unsupported relocation */
#include "vm.h"
#if defined(__x86_64__)
/* Initial-exec TLS: an R_X86_64_GOTTPOFF, which no stencil may need. */
extern _Thread_local int64_t _JIT_OPERAND0;
#define VALUE _JIT_OPERAND0
#else
/* Clang refuses TLS in the large code model, so plant a 16-bit PC-relative
 * relocation (R_AARCH64_PREL16) by hand. */
#define VALUE 0
#endif
PRESERVE_NONE void _JIT_CONTINUE(VMState *, Slot *, Slot *);
PRESERVE_NONE void _JIT_ENTRY(VMState *state, Slot *sp, Slot *fp)
{
#if !defined(__x86_64__)
    __asm__ volatile(".reloc ., R_AARCH64_PREL16, _JIT_OPERAND0\n\t.hword 0\n\t.hword 0");
#endif
    sp[-1].i = VALUE;
    MUSTTAIL return _JIT_CONTINUE(state, sp, fp);
}
