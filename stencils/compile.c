/* A whole compile: what tier 1 recorded (or a hot function's bounds) in,
 * runnable code out, with no Python between the stages.  form.c forms the
 * steps, stitch.c chooses their variants, lays them out and stitches them;
 * this file only chains them over the job's scratch.  jit_compile does it
 * all in one call, taking the code's bytes from the arena's open run (dual
 * mapping: written through one view, run from the other); without a run,
 * jit_compile_form says how big the code is, the caller allocates that
 * much, and jit_compile_stitch fills it.  jit.codegen.ccompile drives it;
 * the stages one by one stay callable for the tests and the listings. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm.h"

/* Forms the path `pcs` (stopped at stop_pc for `kind`), or, when end >= 0,
 * the function [stop_pc, end), into job->formed.  Returns the steps made,
 * -1 when the job's scratch is too small (the caller grows it to
 * jit_form_room(n, job->registers) steps, n the path's or function's
 * length), or -2 when the path names a position outside the code. */
static int64_t
form(CompileJob *job, const int64_t *code, int64_t ncode, const int64_t *pcs, int64_t npcs, int64_t stop_pc,
     int64_t kind, int64_t first_exit, int64_t link_address, int64_t end)
{
    int64_t made;
    if (end >= 0) {
        if (stop_pc < 0 || end > ncode || stop_pc >= end) return -2;
        int64_t nexits = 0;
        made = jit_form_function(job->ops, code, stop_pc, end, first_exit, job->is_label, job->ends_block,
                                 job->superinstructions, job->accounting, job->registers, job->formed, job->cap,
                                 job->exits, &nexits, job->leader, job->index, job->blen, job->stubs, job->entry,
                                 job->where, job->regs);
        job->nexits = nexits;
        job->exit_width = 5;
        job->kind = -1;
    } else {
        int64_t result[2] = {0, 0};
        made = jit_form_trace(job->ops, code, ncode, pcs, npcs, stop_pc, kind, first_exit, link_address,
                              job->superinstructions, job->accounting, job->registers, job->formed, job->cap,
                              job->exits, result, job->entry, job->where, job->stubs, job->regs);
        job->kind = result[0];
        job->nexits = result[1];
        job->exit_width = 4;
    }
    if (made >= 0) job->nsteps = made;
    return made;
}

/* Chooses the formed steps' variants into `steps` (job->formed itself, or
 * job->chosen to keep them as formed) and lays them out: the size. */
static int64_t
plan(CompileJob *job, StepPlan *steps)
{
    int64_t tramp[2];
    job->size = jit_plan(job->plans, job->formed, job->nsteps, job->table, steps, job->where, job->code_at,
                         job->data_at, tramp);
    job->tramp_at = tramp[0];
    job->tramp_slots = tramp[1];
    return job->size;
}

/* Stitches `steps` (as plan() chose them) into the writable memory at
 * address `out` (job->size bytes), as code that will run at `base`, and
 * flushes the instruction cache there: the trampolines used, or -1 on a
 * stitching error (the message in job->error), which is also what too
 * small a job->tramp_room is. */
static int64_t
stitch(CompileJob *job, const StepPlan *steps, uint64_t out, uint64_t base)
{
    if (job->tramp_slots > job->tramp_room) {
        snprintf(job->error, (size_t)job->error_size, "room for %lld trampolines, %lld needed",
                 (long long)job->tramp_room, (long long)job->tramp_slots);
        return -1;
    }
    int64_t used = jit_stitch(job->plans, steps, job->nsteps, job->code_at, job->data_at, job->tramp_at,
                              job->tramp_slots, job->size, (uint8_t *)(uintptr_t)out, base, job->helpers,
                              job->target, job->tramp_dest, job->error, job->error_size);
    if (used >= 0) jit_flush_icache((uintptr_t)base, (uintptr_t)(base + (uint64_t)job->size));
    return used;
}

/* What a compile leaves behind, after the formed steps (which the caller
 * copied while they were as formed): the stencil each step was stitched
 * from (an op number, the variant chosen), code_at (nsteps + 1), data_at
 * (nsteps) and the exits (exit_width each). */
static void
record_rest(const CompileJob *job, const StepPlan *steps, int64_t *record)
{
    int64_t n = job->nsteps;
    int64_t *chosen = record + n * (int64_t)(sizeof(StepPlan) / 8);
    for (int64_t k = 0; k < n; k++) chosen[k] = steps[k].op;
    memcpy(chosen + n, job->code_at, (size_t)(n + 1) * 8);
    memcpy(chosen + 2 * n + 1, job->data_at, (size_t)n * 8);
    memcpy(chosen + 3 * n + 1, job->exits, (size_t)(job->nexits * job->exit_width) * 8);
}

int64_t jit_record_words(const CompileJob *job)
{
    int64_t n = job->nsteps;
    return n * (int64_t)(sizeof(StepPlan) / 8) + 3 * n + 1 + job->nexits * job->exit_width;
}

/* Forms, then chooses variants and lays out (into job->chosen): the size
 * the code needs, or form()'s -1 or -2. */
int64_t
jit_compile_form(CompileJob *job, const int64_t *code, int64_t ncode, const int64_t *pcs, int64_t npcs,
                 int64_t stop_pc, int64_t kind, int64_t first_exit, int64_t link_address, int64_t end)
{
    int64_t made = form(job, code, ncode, pcs, npcs, stop_pc, kind, first_exit, link_address, end);
    return made < 0 ? made : plan(job, job->chosen);
}

/* Stitches what jit_compile_form made into `out` (see stitch()), then
 * copies what the compile leaves behind into `record`, jit_record_words
 * int64s: the formed steps (nsteps StepPlans), then record_rest's arrays.
 * Returns the trampolines used, or -1 (the message in job->error). */
int64_t
jit_compile_stitch(CompileJob *job, uint64_t out, uint64_t base, int64_t *record)
{
    int64_t used = stitch(job, job->chosen, out, base);
    if (used < 0) return used;
    memcpy(record, job->formed, (size_t)job->nsteps * sizeof(StepPlan));
    record_rest(job, job->chosen, record);
    return used;
}

/* The one-call compile: the formed steps go to the record as soon as they
 * are made, and the variants are then chosen in place (no second copy of
 * the steps). */
int64_t *
jit_compile(CompileJob *job, CodeRun *run, const int64_t *args)
{
    int64_t made = form(job, (const int64_t *)(uintptr_t)args[0], args[1], (const int64_t *)(uintptr_t)args[2],
                        args[3], args[4], args[5], args[6], args[7], args[8]);
    if (made < 0) {
        run->status = made; /* (JIT_COMPILE_SCRATCH or JIT_COMPILE_OUTSIDE) */
        return NULL;
    }
    int64_t words = jit_record_words(job);
    int64_t *record = malloc(sizeof(RecordHeader) + (size_t)words * 8);
    if (record == NULL) {
        run->status = JIT_COMPILE_MEMORY;
        return NULL;
    }
    int64_t *rest = record + sizeof(RecordHeader) / 8;
    memcpy(rest, job->formed, (size_t)made * sizeof(StepPlan));
    int64_t size = plan(job, job->formed);
    int64_t g = run->granule, taken = size > g ? (size + g - 1) / g * g : g;
    int64_t status = 0;
    if (job->tramp_slots > job->tramp_room) {
        status = JIT_COMPILE_TRAMPS;
    } else if (run->top + taken > run->size) {
        run->need = taken;
        status = JIT_COMPILE_RUN;
    }
    uint64_t at = (uint64_t)run->top;
    int64_t used = status ? 0 : stitch(job, job->formed, run->rw + at, run->rx + at);
    if (used < 0) status = JIT_COMPILE_STITCH;
    if (status) {
        free(record);
        run->status = status;
        return NULL;
    }
    record_rest(job, job->formed, rest);
    run->top += taken;
    RecordHeader *h = (RecordHeader *)record;
    h->address = (int64_t)(run->rx + at);
    h->taken = taken;
    h->nsteps = made;
    h->nexits = job->nexits;
    h->exit_width = job->exit_width;
    h->kind = job->kind;
    h->tramp_at = job->tramp_at;
    h->tramp_slots = job->tramp_slots;
    h->trampolines = used;
    h->size = size;
    h->words = words;
    run->status = 0;
    return record;
}

/* A record jit_compile returned (jit.codegen.ccompile frees it with the last object reading it). */
void jit_record_free(int64_t *record) { free(record); }
