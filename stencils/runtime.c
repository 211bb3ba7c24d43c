/* What the runtime needs from C besides the helpers. */
#include "vm.h"

/* Make freshly written code visible to instruction fetch: a no-op on x86-64,
 * cache maintenance (dc cvau / ic ivau) on AArch64. */
void
jit_flush_icache(uintptr_t start, uintptr_t end)
{
    __builtin___clear_cache((char *)start, (char *)end);
}

/* GDB's JIT interface.  gdb finds these two symbols by name, sets a
 * breakpoint in the function, and reads the descriptor whenever it is hit. */

__attribute__((visibility("default"))) struct jit_descriptor __jit_debug_descriptor = {1, 0, 0, 0};

__attribute__((visibility("default"), noinline, used)) void
__jit_debug_register_code(void)
{
    __asm__ volatile("" ::: "memory"); /* (not folded away: gdb breaks here) */
}

void
jit_gdb_register(struct jit_code_entry *entry)
{
    entry->prev_entry = 0;
    entry->next_entry = __jit_debug_descriptor.first_entry;
    if (entry->next_entry) {
        entry->next_entry->prev_entry = entry;
    }
    __jit_debug_descriptor.first_entry = entry;
    __jit_debug_descriptor.relevant_entry = entry;
    __jit_debug_descriptor.action_flag = 1;
    __jit_debug_register_code();
}

void
jit_gdb_unregister(struct jit_code_entry *entry)
{
    if (entry->prev_entry) {
        entry->prev_entry->next_entry = entry->next_entry;
    } else {
        __jit_debug_descriptor.first_entry = entry->next_entry;
    }
    if (entry->next_entry) {
        entry->next_entry->prev_entry = entry->prev_entry;
    }
    __jit_debug_descriptor.relevant_entry = entry;
    __jit_debug_descriptor.action_flag = 2;
    __jit_debug_register_code();
}
