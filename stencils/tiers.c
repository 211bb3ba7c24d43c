/* The loop between the tiers, in C: tier 1 runs until a loop header is hot;
 * if a trace starts there, the code runs, and when it comes back through an
 * exit, tier 1 goes on where the exit resumes (or the trace starting there
 * runs).  Each return through an exit is counted.  With a compile job, the
 * loop also traces a hot header itself (trace_loop), and links a hot exit
 * to the trace where it resumes or to a side trace it records and compiles
 * (link_exit); the controller takes what it made from the loop's logs.
 * The tiering controller (jit.runtime.tiering) hears only of what it must
 * act on: a hot header or exit that needs it (no job, a compile that needs
 * more room, a call out of a compiled function), a hot function, and the
 * end of the program.  It makes the same decisions as the controller's own
 * loop in Python (kept for the emulated machine, and as the reference),
 * without a round trip through Python for every time control crosses
 * between the tiers. */
#define _POSIX_C_SOURCE 199309L /* (clock_gettime) */
#include <time.h>

#include "vm.h"

static void *
trace_at(const TierLoop *loop, int64_t pc)
{
    return pc >= 0 && pc < loop->ncode ? loop->trace_at[pc] : (void *)0;
}

static int64_t
now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Where the exits of a compile's record are, for link_exit: each exit's
 * step in the code (at its address, and `view_offset` bytes on in the
 * writable view).  A call out of a compiled function is left to the
 * controller. */
void
jit_note_exits(TierLoop *loop, const int64_t *record, int64_t view_offset)
{
    const RecordHeader *h = (const RecordHeader *)record;
    int64_t n = h->nsteps, width = h->exit_width;
    const int64_t *code_at = record + sizeof(RecordHeader) / 8 + n * (int64_t)(sizeof(StepPlan) / 8) + n;
    const int64_t *exits = code_at + 2 * n + 1; /* (id, resume pc, micro-ops, step[, a call?]) each */
    for (int64_t k = 0; k < h->nexits; k++) {
        const int64_t *e = exits + k * width;
        if (e[0] < 0 || e[0] >= loop->nexits || (width > 4 && e[4])) continue;
        uint64_t at = (uint64_t)h->address + (uint64_t)code_at[e[3]];
        loop->exit_at[e[0]] = at;
        loop->exit_rw[e[0]] = at + (uint64_t)view_offset;
    }
}

/* jit_compile (args: its nine), and what the loop does with a compile it
 * made: the exits noted, and the compile logged (start: the path's first
 * position; ops: its length). */
static int64_t *
compile_logged(TierLoop *loop, const int64_t *args, int64_t start, int64_t ops, int64_t side)
{
    int64_t *record = jit_compile(loop->job, loop->run, args);
    if (record) {
        loop->next_exit += ((const RecordHeader *)record)->nexits;
        jit_note_exits(loop, record, (int64_t)(loop->run->rw - loop->run->rx));
        loop->log[loop->nlog++] = (LoggedCompile){record, start, ops, side};
    }
    return record;
}

/* Records the path from `start` (tier 1 executes it) and compiles it into
 * the open run, as the controller's _record_and_compile does: the code's
 * record, logged and its exits noted, or NULL.  *status is VM_RUNNING when
 * the path could not be traced (recording failed or ran into the end of
 * the program, which *status then says, or the exits ran out), and
 * VM_HOT_RECORDED when it is recorded and its compile needs the controller
 * (a new run, more room, an error to report). */
static int64_t *
record_and_compile(VMState *state, const Inst *code, int64_t start, int64_t side, TierLoop *loop, int64_t *status)
{
    Recorder *rec = loop->rec;
    rec->len = 0;
    rec->start = start;
    rec->depth = 0;
    int64_t t0 = now_ns();
    run_record(state, code, start, rec);
    int64_t t1 = now_ns();
    loop->record_ns += t1 - t0;
    if (state->status != VM_RECORDED || rec->len == 0) {
        *status = state->status == VM_HALTED || state->status == VM_ERROR ? state->status : VM_RUNNING;
        return NULL;
    }
    *status = VM_RUNNING;
    if (loop->next_exit + rec->len + 2 > loop->nexits) return NULL;
    int64_t stop = state->pc;
    const FormOps *ops = loop->job->ops;
    void *link = trace_at(loop, stop);
    int64_t kind = stop == start ? ops->kind_loop : link ? ops->kind_link : ops->kind_exit;
    int64_t args[9] = {(int64_t)(uintptr_t)loop->form_code, loop->ncode, (int64_t)(uintptr_t)rec->pcs, rec->len,
                       stop, kind, loop->next_exit, kind == ops->kind_link ? (int64_t)(uintptr_t)link : 0, -1};
    int64_t *record = compile_logged(loop, args, start, rec->len, side);
    if (!record) *status = VM_HOT_RECORDED;
    loop->compile_ns += now_ns() - t1;
    return record;
}

/* Compiles n paths recorded earlier (rows of eleven int64s: jit_compile's
 * nine arguments, then the path's first position and its length) one
 * after another, each as the loop compiles one (compile_logged), with
 * nothing between them: how many were made before one was not (run->status
 * says why) or the log was full.  jit.tools.benchmark times it. */
int64_t
jit_compile_paths(TierLoop *loop, const int64_t *rows, int64_t n)
{
    int64_t k = 0;
    while (loop->job && k < n && loop->nlog < loop->log_cap) {
        const int64_t *row = rows + 11 * k;
        if (!compile_logged(loop, row, row[9], row[10], 0)) break;
        k++;
    }
    return k;
}

/* The controller's _trace_loop, for a hot header with no trace: the
 * trace recorded and compiled, and installed at the header (or the header
 * marked never to be traced).  VM_RUNNING when the loop goes on at
 * state->pc, else what the controller must hear.  (The controller calls it
 * too, for the header that was hot when it set the loop up to compile.) */
int64_t
jit_trace_loop(VMState *state, const Inst *code, int64_t header, TierLoop *loop)
{
    if (!loop->job || loop->nlog == loop->log_cap) return VM_HOT;
    loop->hot_loops++;
    int64_t status;
    int64_t *record = record_and_compile(state, code, header, 0, loop, &status);
    if (record) {
        loop->trace_at[header] = (void *)(uintptr_t)((const RecordHeader *)record)->address;
        loop->heads[header] = 1;
        state->counters[header] = 0; /* tier 1 hands over at every back-edge from now on */
    } else if (status != VM_HOT_RECORDED) {
        state->counters[header] = loop->never;
    } else {
        loop->pending_exit = -1;
    }
    return status;
}

/* The controller's _exit_taken, for an exit come back hot_exit times that
 * the controller left to the loop (exit_at known: not a call): linked to
 * the trace where it resumes, or to a side trace recorded and compiled
 * from there (or settled, never to be linked, when it cannot be traced). */
static int64_t
link_exit(VMState *state, const Inst *code, int64_t id, TierLoop *loop)
{
    if (loop->nlog == loop->log_cap || loop->nlinks == loop->links_cap) return VM_EXIT_HOT;
    int64_t resume = state->pc, status = VM_RUNNING;
    void *destination = trace_at(loop, resume);
    if (!destination) {
        int64_t *record = record_and_compile(state, code, resume, 1, loop, &status);
        if (!record) {
            if (status == VM_HOT_RECORDED) {
                loop->pending_exit = id;
            } else {
                loop->settled[id] = 1; /* the controller's _fail */
            }
            return status;
        }
        destination = (void *)(uintptr_t)((const RecordHeader *)record)->address;
    }
    int64_t before = loop->passes ? loop->passes[id] : loop->returns[id];
    int64_t patched = jit_write_jump(loop->job->target, (uint8_t *)(uintptr_t)loop->exit_rw[id], loop->exit_at[id],
                                     (uint64_t)(uintptr_t)destination) > 0;
    loop->settled[id] = 1;
    loop->links[loop->nlinks++] = (LoggedLink){id, (int64_t)(uintptr_t)destination, before, patched};
    return status;
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
                if (!loop->job) {
                    return VM_HOT; /* a loop to trace */
                }
                int64_t status = jit_trace_loop(state, code, pc, loop);
                if (status != VM_RUNNING) {
                    return status;
                }
                pc = state->pc;
                continue;
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
            if (!loop->job || !loop->exit_at[id]) {
                return VM_EXIT_HOT;
            }
            status = link_exit(state, code, id, loop);
            if (status != VM_RUNNING) {
                return status;
            }
            pc = state->pc;
        }
    }
}
