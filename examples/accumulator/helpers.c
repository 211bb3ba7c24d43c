/* Helpers: C functions the op bodies call.  The stencils reach them
 * through _JIT_HELPER_<name> holes (each is built as a stencil of its own
 * and placed beside the program), the interpreter calls them directly.
 * Like stencils they may not keep writable data of their own. */
#include "helpers.h"

uint64_t fold(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ULL;
    return x ^ (x >> 29);
}

uint64_t mix(uint64_t x, uint64_t key)
{
    return fold(x ^ key) + fold(key);
}
