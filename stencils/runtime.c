/* What the runtime needs from C besides the helpers. */
#include "vm.h"

/* Make freshly written code visible to instruction fetch: a no-op on x86-64,
 * cache maintenance (dc cvau / ic ivau) on AArch64. */
void
jit_flush_icache(uintptr_t start, uintptr_t end)
{
    __builtin___clear_cache((char *)start, (char *)end);
}
