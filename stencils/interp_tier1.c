/* Tier 1 of the tiered engine: the switch interpreter over the same op
 * bodies, plus what tiering needs.  run_tier1 counts the back-edges into
 * each loop header, and the calls of each function, and stops (VM_HOT)
 * when a counter runs out; run_record executes
 * the path a hot loop takes and writes down its IR positions (a ret out of
 * the frame the path started in is its last instruction).  Both count
 * the micro-ops they execute.  The baseline interpreters stay free of this. */
#include "vm.h"
#include "helpers.h"
#include "opcodes.h"

#define BODY(name) case OP_##name:
#define OPARG (ip->a)
#define OPARG1 (ip->b)
#define POSITION ((int64_t)(ip - code))
#define NEXT() { ip++; continue; }
#define SIDE_EXIT() JUMP()
#define RETURN_CODE ((void *)0)
#define RETURN_TO(f) { ip = code + (f)->ret_pc; continue; }
#define HELPER(name) name
#define LEAVE_HOOK() (state->interp_ops += ops)

/* A taken jump to an earlier position is a back-edge into a loop header. */
#define JUMP()                                                      \
    {                                                               \
        const Inst *to_ = code + ip->a;                             \
        if (to_ <= ip && --state->counters[ip->a] <= 0) {           \
            ip = to_;                                               \
            LEAVE(VM_HOT, (int64_t)(ip - code));                    \
        }                                                           \
        ip = to_;                                                   \
        continue;                                                   \
    }

/* A call counts down the callee's counter (hot functions are compiled whole). */
#define ENTER_CALLEE()                                              \
    {                                                               \
        int64_t to_ = ip->a;                                        \
        ip = code + to_;                                            \
        if (--state->call_counters[to_] <= 0) {                     \
            LEAVE(VM_HOT_CALL, to_);                                \
        }                                                           \
        continue;                                                   \
    }

void
run_tier1(VMState *state, const Inst *code, int64_t pc)
{
    Slot *sp = state->sp;
    Slot *fp = state->fp;
    const Inst *ip = code + pc;
    int64_t ops = 0;
    for (;;) {
        ops++;
        switch (ip->op) {
#include "bodies.h"
        default:
            __builtin_unreachable();
        }
    }
}

#undef JUMP
#undef ENTER_CALLEE
#define JUMP() { ip = code + ip->a; continue; }
#define ENTER_CALLEE() JUMP()

/* Stop recording, before executing the instruction at ip. */
#define STOP()                                      \
    do {                                            \
        ops--;                                      \
        LEAVE(VM_RECORDED, (int64_t)(ip - code));   \
    } while (0)

void
run_record(VMState *state, const Inst *code, int64_t pc, Recorder *rec)
{
    Slot *sp = state->sp;
    Slot *fp = state->fp;
    const Inst *ip = code + pc;
    int64_t ops = 0;
    int returned = 0;  /* a ret out of the starting frame ends the path after it */
    for (;;) {
        ops++;
        int64_t here = ip - code;
        if (returned || (rec->len > 0 && (here == rec->start || rec->heads[here]))) {
            STOP();
        }
        if (rec->len >= rec->max || ip->op == OP_HALT) {
            STOP();
        }
        returned = ip->op == OP_RET && rec->depth == 0;
        rec->depth += (ip->op == OP_CALL) - (ip->op == OP_RET);
        rec->pcs[rec->len++] = here;
        switch (ip->op) {
#include "bodies.h"
        default:
            __builtin_unreachable();
        }
    }
}
