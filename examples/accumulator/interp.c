/* The interpreter of the same bodies, over jit.opsets' records:
 * op, operand0-3, target, position (seven int64 each). */
#include "state.h"
#include "helpers.h"

typedef struct Inst {
    int64_t op, operand[4], target, position;
} Inst;

#define ARG ((uint64_t)in->operand[0])
#define BODY(name) case OP_##name:
#define NEXT() do { pc++; goto dispatch; } while (0)
#define JUMP() do { pc = in->target; goto dispatch; } while (0)
#define HALT() return 0
#define HELPER(name) name

int64_t
opset_interpret(AccState *s, const Inst *code)
{
    int64_t pc = 0;
dispatch:;
    const Inst *in = &code[pc];
    switch (in->op) {
#include "bodies.h"
    }
    return -1;
}
