/* The loop between the tiers, in C: tier 1 runs until a loop header is hot;
 * if a trace starts there, the code runs, and when it comes back through an
 * exit, tier 1 goes on where the exit resumes (or the trace starting there
 * runs).  Each return through an exit is counted; the tiering controller
 * (jit.runtime.tiering) hears only of what it must act on: a hot header
 * with no trace, a hot function, an exit taken hot_exit times that is not
 * yet settled (linked, or never to be), and the end of the program.  It
 * makes the same decisions as the controller's own loop in Python (kept for
 * the emulated machine, and as the reference), without a round trip
 * through Python for every time control crosses between the tiers. */
#include "vm.h"

static void *
trace_at(const TierLoop *loop, int64_t pc)
{
    return pc >= 0 && pc < loop->ncode ? loop->trace_at[pc] : (void *)0;
}

int64_t
jit_run_tiers(VMState *state, const Inst *code, int64_t pc, TierLoop *loop)
{
    for (;;) {
        void *trace = trace_at(loop, pc);
        if (!trace) {
            run_tier1(state, code, pc);
            if (state->status != VM_HOT) {
                return state->status; /* halted, failed, or a hot function */
            }
            pc = state->pc;
            trace = trace_at(loop, pc);
            if (!trace) {
                return VM_HOT; /* a loop to trace */
            }
        }
        loop->entries++;
        state->entry = trace;
        int64_t status = loop->enter(state);
        if (status != VM_EXITED) {
            return status;
        }
        loop->exits++;
        pc = state->pc;
        int64_t id = state->exit_index;
        if (id < 0 || id >= loop->nexits) {
            continue; /* a return to tier 1, not a side exit */
        }
        int64_t taken = loop->passes ? loop->passes[id] : ++loop->returns[id];
        if (taken >= loop->hot_exit && !loop->settled[id]) {
            return VM_EXIT_HOT;
        }
    }
}
