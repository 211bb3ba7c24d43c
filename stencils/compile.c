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
 * the function [stop_pc, end); then chooses variants and lays out.
 * Returns the size the code needs, -1 when the job's scratch is too small
 * (the caller grows it to 4 * n + 4 steps, n the path's or function's
 * length), or -2 when the path names a position outside the code. */
int64_t
jit_compile_form(CompileJob *job, const int64_t *code, int64_t ncode, const int64_t *pcs, int64_t npcs,
                 int64_t stop_pc, int64_t kind, int64_t first_exit, int64_t link_address, int64_t end)
{
    int64_t made;
    if (end >= 0) {
        if (stop_pc < 0 || end > ncode || stop_pc >= end) return -2;
        int64_t nexits = 0;
        made = jit_form_function(job->ops, code, stop_pc, end, first_exit, job->is_label, job->ends_block,
                                 job->superinstructions, job->accounting, job->formed, job->cap, job->exits, &nexits,
                                 job->leader, job->index, job->blen, job->stubs, job->entry, job->where);
        job->nexits = nexits;
        job->exit_width = 5;
        job->kind = -1;
    } else {
        int64_t result[2] = {0, 0};
        made = jit_form_trace(job->ops, code, ncode, pcs, npcs, stop_pc, kind, first_exit, link_address,
                              job->superinstructions, job->accounting, job->formed, job->cap, job->exits, result,
                              job->entry, job->where, job->stubs);
        job->kind = result[0];
        job->nexits = result[1];
        job->exit_width = 4;
    }
    if (made < 0) return made;
    job->nsteps = made;
    int64_t tramp[2];
    job->size = jit_plan(job->plans, job->formed, made, job->table, job->chosen, job->entry, job->code_at,
                         job->data_at, tramp);
    job->tramp_at = tramp[0];
    job->tramp_slots = tramp[1];
    return job->size;
}

/* Stitches what jit_compile_form made into the writable memory at address
 * `out` (job->size bytes), as code that will run at `base`, and flushes the
 * instruction cache there; then copies what the compile leaves behind into
 * `record`, one array after another: the formed steps (nsteps StepPlans),
 * the stencil each step was stitched from (nsteps op numbers, the
 * variants chosen), code_at (nsteps + 1), data_at (nsteps) and the exits
 * (exit_width each).
 * Returns the trampolines used, or -1 on a stitching error (the message in
 * job->error), which is also what too small a job->tramp_room is. */
int64_t jit_record_words(const CompileJob *job)
{
    int64_t n = job->nsteps;
    return n * (int64_t)(sizeof(StepPlan) / 8) + 3 * n + 1 + job->nexits * job->exit_width;
}

int64_t
jit_compile_stitch(CompileJob *job, uint64_t out, uint64_t base, int64_t *record)
{
    if (job->tramp_slots > job->tramp_room) {
        snprintf(job->error, (size_t)job->error_size, "room for %lld trampolines, %lld needed",
                 (long long)job->tramp_room, (long long)job->tramp_slots);
        return -1;
    }
    int64_t n = job->nsteps;
    int64_t used = jit_stitch(job->plans, job->chosen, n, job->code_at, job->data_at, job->tramp_at,
                              job->tramp_slots, job->size, (uint8_t *)(uintptr_t)out, base, job->helpers,
                              job->target, job->tramp_dest, job->error, job->error_size);
    if (used < 0) return used;
    jit_flush_icache((uintptr_t)base, (uintptr_t)(base + (uint64_t)job->size));
    memcpy(record, job->formed, (size_t)n * sizeof(StepPlan));
    int64_t *chosen = record + n * (int64_t)(sizeof(StepPlan) / 8);
    for (int64_t k = 0; k < n; k++) chosen[k] = job->chosen[k].op;
    memcpy(chosen + n, job->code_at, (size_t)(n + 1) * 8);
    memcpy(chosen + 2 * n + 1, job->data_at, (size_t)n * 8);
    memcpy(chosen + 3 * n + 1, job->exits, (size_t)(job->nexits * job->exit_width) * 8);
    return used;
}

int64_t *
jit_compile(CompileJob *job, CodeRun *run, const int64_t *args)
{
    int64_t size = jit_compile_form(job, (const int64_t *)(uintptr_t)args[0], args[1],
                                    (const int64_t *)(uintptr_t)args[2], args[3], args[4], args[5], args[6], args[7],
                                    args[8]);
    if (size < 0) {
        run->status = size; /* (JIT_COMPILE_SCRATCH or JIT_COMPILE_OUTSIDE) */
        return NULL;
    }
    if (job->tramp_slots > job->tramp_room) {
        run->status = JIT_COMPILE_TRAMPS;
        return NULL;
    }
    int64_t g = run->granule, taken = size > g ? (size + g - 1) / g * g : g;
    if (run->top + taken > run->size) {
        run->need = taken;
        run->status = JIT_COMPILE_RUN;
        return NULL;
    }
    int64_t n = job->nsteps;
    int64_t words = jit_record_words(job);
    int64_t *record = malloc(sizeof(RecordHeader) + (size_t)words * 8);
    if (record == NULL) {
        run->status = JIT_COMPILE_MEMORY;
        return NULL;
    }
    uint64_t at = (uint64_t)run->top;
    int64_t used = jit_compile_stitch(job, run->rw + at, run->rx + at, record + sizeof(RecordHeader) / 8);
    if (used < 0) {
        free(record);
        run->status = JIT_COMPILE_STITCH;
        return NULL;
    }
    run->top += taken;
    RecordHeader *h = (RecordHeader *)record;
    h->address = (int64_t)(run->rx + at);
    h->taken = taken;
    h->nsteps = n;
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
