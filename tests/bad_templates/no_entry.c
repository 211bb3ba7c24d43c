/* expect: defines no _JIT_ENTRY */
#include "vm.h"
int64_t twice(int64_t x) { return 2 * x; }
