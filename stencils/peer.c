/* One micro-op as a plain C function, for the LLVM peer's whole-function
 * lowering (jit/runtime/llvm_backend.py).  Compile with -DTHIS_OP=OP_<NAME> to LLVM
 * IR; the lowering inlines one call of it per step into a function that
 * keeps the operand stack and the locals in allocas, which LLVM promotes to
 * SSA values.  So, unlike a stencil, the op does not continue anywhere: it
 * returns which way control goes, and the lowering branches there.
 *
 *   sp, fp         the operand stack and the locals: pointers into the
 *                  lowering's allocas, at offsets it knows statically
 *   mem, mem_size  the program's memory, loaded once per region (they do
 *                  not change during a run)
 *   oparg, oparg1  the instruction's operands; position its IR position
 *
 * LEAVE records why and where (status, pc) but not sp and fp: those point
 * into the allocas, so the lowering writes the stack back to the VM and
 * stores the real pointers.  An op that fails has put back what it took,
 * so the stack then has the depth it had before the op.
 *
 * A call the lowering inlines runs CALL here too: real_sp and real_fp are
 * where sp and fp stand in the VM's stack (for the stack-room check and
 * the frame record), ret_code the code a return that is not inlined goes
 * to; it returns PEER_CALL, and the lowering goes on in the callee.  RET
 * returns PEER_RETURN, and the lowering goes on where the call was.
 * EXIT, and calls and returns it does not inline, use their ordinary
 * stencil IR (template.c), which works on the VM's own stack.
 */
#include "vm.h"
#include "helpers.h"
#include "opcodes.h"

enum {
    PEER_NEXT = 0,      /* on to the next step */
    PEER_JUMP = 1,      /* to the step's jump target */
    PEER_SIDE_EXIT = 2, /* to the step's side exit */
    PEER_LEAVE = 3,     /* out of compiled code: state->status and pc are set */
    PEER_CALL = 4,      /* into the called function (its first step) */
    PEER_RETURN = 5,    /* back to the caller (the step after its call) */
};

#define DECLARE_HELPER(name) extern char _JIT_HELPER_##name[];
HELPERS(DECLARE_HELPER)
#undef DECLARE_HELPER

#define BODY(name) case OP_##name:
#define OPARG oparg
#define OPARG1 oparg1
#define POSITION position
#define MEMORY mem
#define MEMORY_SIZE mem_size
#define NEXT() return PEER_NEXT
#define JUMP() return PEER_JUMP
#define SIDE_EXIT() return PEER_SIDE_EXIT
#define LEAVE(st, where)          \
    do {                          \
        state->status = (st);     \
        state->pc = (where);      \
        return PEER_LEAVE;        \
    } while (0)
#define ENTER_CALLEE() return PEER_CALL
#define RETURN_CODE ret_code
#define RETURN_TO(f) return PEER_RETURN
#define STACK_ROOM() (state->stack_limit - real_sp)
#define CALLER_FP real_fp
#define HELPER(name) ((__typeof__(&name))(void *)_JIT_HELPER_##name)

int64_t
_JIT_ENTRY(VMState *state, Slot *sp, Slot *fp, Slot *mem, int64_t mem_size, int64_t oparg, int64_t oparg1,
           int64_t position, Slot *real_sp, Slot *real_fp, void *ret_code)
{
    switch (THIS_OP) {
#include "bodies.h"
    }
    __builtin_unreachable();
}
