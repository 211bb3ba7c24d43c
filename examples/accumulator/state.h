#include <stdint.h>

typedef struct AccState {
    uint64_t acc;      /* the accumulator: the program's result */
    uint64_t count;    /* LOOP jumps back while --count is not 0 */
    uint64_t halted;
} AccState;

typedef __attribute__((preserve_none)) void (*acc_fn)(AccState *);

#define OP(name, mnemonic) OP_##name,
enum {
#include "ops.def"
};
#undef OP
