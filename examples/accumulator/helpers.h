/* The helpers the bodies call: plain C functions (helpers.c). */
#include <stdint.h>

uint64_t mix(uint64_t x, uint64_t key);
uint64_t fold(uint64_t x);
