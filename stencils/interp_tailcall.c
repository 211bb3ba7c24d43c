/* Baseline 2: one preserve_none handler per op, each ending in a musttail
 * call to the next handler, in the style of CPython 3.14's tail-calling
 * interpreter.  Same op bodies as the stencils. */
#include "vm.h"
#include "helpers.h"
#include "opcodes.h"

#define HANDLER_ARGS VMState *state, Slot *sp, Slot *fp, const Inst *ip, const Inst *code
typedef PRESERVE_NONE void (*handler)(HANDLER_ARGS);

#define OP(name, mnemonic, pops, pushes, operand, flags) static PRESERVE_NONE void h_##name(HANDLER_ARGS);
#include "ops.def"
#undef OP

static const handler table[OP__COUNT] = {
#define OP(name, mnemonic, pops, pushes, operand, flags) [OP_##name] = h_##name,
#include "ops.def"
#undef OP
};

#define DISPATCH(to)                                                    \
    do {                                                                \
        const Inst *next_ = (to);                                       \
        MUSTTAIL return table[next_->op](state, sp, fp, next_, code);   \
    } while (0)

#define BODY(name) static PRESERVE_NONE void h_##name(HANDLER_ARGS)
#define OPARG (ip->a)
#define OPARG1 (ip->b)
#define POSITION ((int64_t)(ip - code))
#define NEXT() DISPATCH(ip + 1)
#define JUMP() DISPATCH(code + ip->a)
#define SIDE_EXIT() JUMP()
#define ENTER_CALLEE() JUMP()
#define RETURN_CODE ((void *)0)
#define RETURN_TO(f) DISPATCH(code + (f)->ret_pc)
#define HELPER(name) name
#include "bodies.h"

void
run_tailcall(VMState *state, const Inst *code, int64_t pc)
{
    table[code[pc].op](state, state->sp, state->fp, code + pc, code);
}
