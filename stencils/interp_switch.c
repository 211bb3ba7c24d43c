/* Baseline 1: a switch-dispatch interpreter over the same op bodies as the
 * stencils.  Every op body ends in NEXT/JUMP (continue the loop) or LEAVE
 * (return with the state saved). */
#include "vm.h"
#include "helpers.h"
#include "opcodes.h"

void
run_switch(VMState *state, const Inst *code, int64_t pc)
{
    Slot *sp = state->sp;
    Slot *fp = state->fp;
    const Inst *ip = code + pc;
    for (;;) {
        switch (ip->op) {
#define BODY(name) case OP_##name:
#define OPARG (ip->a)
#define OPARG1 (ip->b)
#define POSITION ((int64_t)(ip - code))
#define NEXT() { ip++; continue; }
#define JUMP() { ip = code + ip->a; continue; }
#define SIDE_EXIT() JUMP()
#define ENTER_CALLEE() JUMP()
#define RETURN_CODE ((void *)0)
#define RETURN_TO(f) { ip = code + (f)->ret_pc; continue; }
#define HELPER(name) name
#include "bodies.h"
        default:
            __builtin_unreachable();
        }
    }
}
