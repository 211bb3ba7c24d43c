/* expect: clang failed */
#include "vm.h"
PRESERVE_NONE void _JIT_ENTRY(VMState *state, Slot *sp, Slot *fp) { this is not C; }
