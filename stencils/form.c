/* Forming a trace from a recorded path, keeping locals in registers, and
 * fusing superinstructions, in C: jit/codegen/trace.py's form_trace,
 * jit/codegen/passes.py's Registers and jit/codegen/fuse.py's fuse, the
 * readable reference these must match step for step (tests/test_cform.py).
 * The steps come out as the StepPlans the stitcher reads, each op by its
 * number in the op table; no Python object is made per step. */
#include <stdint.h>
#include <string.h>

#include "vm.h"

enum { NONE = -1 };

static StepPlan step(int64_t op, int64_t a, int64_t b, int64_t position)
{
    StepPlan s = {op, a, b, position, NONE, NONE, NONE, 0, 0, 0};
    return s;
}

/* Which of the comparisons op is (FormOps.compare), or NONE. */
static int64_t comparison(const FormOps *o, int64_t op)
{
    for (int64_t c = 0; c < COMPARES; c++) {
        if (o->compare[c] == op) return c;
    }
    return NONE;
}

/* The superinstruction for the run at i, and its length (0: none).  See fuse.py. */
static int64_t match(const StepPlan *s, int64_t n, int64_t i, const FormOps *o, StepPlan *fused)
{
    static const int64_t opposite[COMPARES] = {1, 0, 5, 4, 3, 2}; /* eq-ne, lt-ge, le-gt */
    int64_t op = s[i].op, c = comparison(o, op), r = NONE;
    for (int64_t j = 0; j < LOCAL_REGS; j++) {
        if (op == o->load_r[j]) r = j;
    }
    if (op != o->load && op != o->store && op != o->push_int && op != o->float_op[FLOAT_MUL] && c == NONE && r == NONE)
        return 0; /* (no run starts so) */
    int64_t op1 = i + 1 < n ? s[i + 1].op : NONE, op2 = i + 2 < n ? s[i + 2].op : NONE;
    if (r != NONE) {
        if (op1 == o->push_int && (op2 == o->add || op2 == o->sub) && i + 3 < n && s[i + 3].op == o->store_r[r]) {
            int64_t k = op2 == o->add ? s[i + 1].operand0 : (int64_t)(0 - (uint64_t)s[i + 1].operand0);
            *fused = step(o->inc_r[r], k, 0, s[i].position);
            return 4;
        }
        return 0;
    }
    if (c != NONE && (op1 == o->jz || op1 == o->jnz || op1 == o->guard_zero || op1 == o->guard_nonzero)) {
        int64_t cond = op1 == o->jz || op1 == o->guard_zero ? opposite[c] : c; /* (branching on a 0) */
        *fused = s[i + 1]; /* the branch's operands, target and exit */
        fused->op = op1 == o->jz || op1 == o->jnz ? o->jump_if[cond] : o->guard_if[cond];
        fused->position = s[i].position;
        return 2;
    }
    if (op == o->load && op1 == o->push_int && (op2 == o->add || op2 == o->sub)) {
        int64_t k = op2 == o->add ? s[i + 1].operand0 : (int64_t)(0 - (uint64_t)s[i + 1].operand0);
        if (i + 3 < n && s[i + 3].op == o->store && s[i + 3].operand0 == s[i].operand0) {
            *fused = step(o->inc_local, s[i].operand0, k, s[i].position);
            return 4;
        }
        *fused = step(o->load_addk, s[i].operand0, k, s[i].position);
        return 3;
    }
    for (int f = 0; op == o->load && f < FLOAT_FUSED; f++) {
        if (op1 == o->load && op2 == o->float_op[f]) {
            *fused = step(o->float_ll[f], s[i].operand0, s[i + 1].operand0, s[i].position);
            return 3;
        }
    }
    if (op == o->load && op1 == o->load) {
        *fused = step(o->load2, s[i].operand0, s[i + 1].operand0, s[i].position);
        return 2;
    }
    for (int f = 0; op == o->load && f < FLOAT_FUSED; f++) {
        if (op1 == o->float_op[f]) {
            *fused = step(o->float_l[f], s[i].operand0, 0, s[i].position);
            return 2;
        }
    }
    if (op == o->store && op1 == o->load) {
        *fused = step(o->store_load, s[i].operand0, s[i + 1].operand0, s[i].position);
        return 2;
    }
    if (op == o->push_int && (op1 == o->add || op1 == o->sub)) {
        int64_t k = op1 == o->add ? s[i].operand0 : (int64_t)(0 - (uint64_t)s[i].operand0);
        *fused = step(o->addk, k, 0, s[i].position);
        return 2;
    }
    if (op == o->float_op[FLOAT_MUL] && op1 == o->float_op[FLOAT_ADD]) {
        *fused = step(o->fmul_fadd, 0, 0, s[i].position);
        return 2;
    }
    return 0;
}

static int64_t renumbered(int64_t k, const int64_t *where) { return k == NONE ? NONE : where[k]; }

/* fuse.py's fuse, in place: `entry` (n + 1 bytes) and `where` (n + 1) are scratch. */
static int64_t fuse(StepPlan *s, int64_t n, const FormOps *o, uint8_t *entry, int64_t *where)
{
    memset(entry, 0, (size_t)n + 1);
    entry[0] = 1;
    for (int64_t k = 0; k < n; k++) {
        if (s[k].target >= 0) entry[s[k].target] = 1;
        if (s[k].exit >= 0) entry[s[k].exit] = 1;
        if (s[k].continue_to >= 0) entry[s[k].continue_to] = 1;
    }
    int64_t out = 0;
    for (int64_t i = 0; i < n;) {
        StepPlan fused;
        int64_t len = match(s, n, i, o, &fused);
        for (int64_t k = i + 1; k < i + len; k++) {
            if (entry[k]) len = 0;
        }
        if (len == 0) {
            where[i] = out;
            if (out != i) s[out] = s[i];
            out++, i++;
            continue;
        }
        for (int64_t k = i; k < i + len; k++) where[k] = out;
        s[out++] = fused;  /* (out <= i: the run just read is not needed again) */
        i += len;
    }
    where[n] = out;
    for (int64_t k = 0; k < out; k++) {
        s[k].target = renumbered(s[k].target, where);
        s[k].exit = renumbered(s[k].exit, where);
        s[k].continue_to = renumbered(s[k].continue_to, where);
    }
    return out;
}

int64_t jit_form_room(int64_t n, int64_t registers)
{
    /* At most 4 steps a position (a guard or call and its stub, the
     * ending); the registers pass adds up to LOCAL_REGS fills at the start,
     * spills before each stub (one a position, and the ending's) and the
     * jump into another trace, and spills and fills around each call. */
    return registers ? (4 + 3 * LOCAL_REGS) * n + 4 + 4 * LOCAL_REGS : 4 * n + 4;
}

enum { CALLED = 2, JUMPED = 4 }; /* (registers(): entry[] bits beside 1, something enters there) */

static int stub(const StepPlan *s, int64_t i, const FormOps *o)
{
    return s[i].op == o->take_exit || (s[i].op == o->exit && (i == 0 || s[i - 1].op != o->take_exit));
}

/* The float locals scan of passes.py's _float_locals: marks FLOAT_TAKES in
 * flags[k] for each local (k its row in the locals table; tix[i], the row
 * of step i's, for loads and stores) that holds floats.  stack: room for
 * 3 * n + 3 slots: each a local's row, -1 unknown, -2 a float. */
static void float_locals(const StepPlan *s, int64_t n, const FormOps *o, const uint8_t *entry, const int64_t *tix,
                         uint8_t *flags, int64_t *stack)
{
    int64_t depth = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t op = s[i].op, popped[8];
        if (entry[i] & 1) depth = 0;
        if (op == o->load) {
            stack[depth++] = tix[i];
            continue;
        }
        if (o->float_use[op] & FLOAT_CLEARS) {
            depth = 0;
            continue;
        }
        int64_t pops = o->pops[op] < 8 ? o->pops[op] : 8;
        for (int64_t k = 0; k < pops; k++) popped[k] = depth > 0 ? stack[--depth] : -1;
        if (op == o->dup || op == o->swap || op == o->over) {
            int64_t b = popped[0], a = pops > 1 ? popped[1] : -1;
            if (op == o->dup) stack[depth++] = b, stack[depth++] = b;
            else if (op == o->swap) stack[depth++] = b, stack[depth++] = a;
            else stack[depth++] = a, stack[depth++] = b, stack[depth++] = a;
            continue;
        }
        if (op == o->store && popped[0] == -2) flags[tix[i]] |= FLOAT_TAKES;
        for (int64_t p = 0; p < pops && (o->float_use[op] & FLOAT_TAKES); p++) {
            if (popped[p] >= 0) flags[popped[p]] |= FLOAT_TAKES;
        }
        for (int64_t k = 0; k < o->pushes[op]; k++) stack[depth++] = o->float_use[op] & FLOAT_MAKES ? -2 : -1;
    }
}

/* passes.py's Registers.run, in place, before fusion: `s` has room for
 * `cap` steps; where[old] is the step that stands for an old one (n + 1
 * entries).  Steps formed here are one region: a trace's inlined calls
 * make it keep its locals in memory, and a function's calls enter an exit
 * stub or step 0.  Returns the steps, or -1 without room.  Scratch:
 * entry (n + 1 bytes), regs (REGISTER_SCRATCH * (n + 1) int64s). */
static int64_t registers(StepPlan *s, int64_t n, int64_t cap, const FormOps *o, uint8_t *entry, int64_t *where,
                         int64_t *regs)
{
    int64_t *entered = regs, *landing = regs + n + 1, *stack = regs + 2 * n + 2;
    int64_t *loc = regs + 5 * n + 5, *uses = loc + n, *tix = uses + n; /* (the locals table; each step's row) */
    uint8_t *flags = (uint8_t *)(tix + n); /* (n bytes: bit 0 stored, FLOAT_TAKES a float) */
    for (int64_t i = 0; i <= n; i++) where[i] = i;
    memset(entry, 0, (size_t)n + 1);
    entry[0] = 1;
    int64_t calls = 0, loops = 0, nl = 0;
    for (int64_t i = 0; i < n; i++) {
        const StepPlan *t = &s[i];
        if (t->op == o->call) {
            if (t->target == NONE || t->target == i + 1) return n; /* (an inlined call) */
            if (t->target != 0 && !stub(s, t->target, o)) return n; /* (never formed here: see above) */
            entry[t->target] |= 1 | CALLED;
            calls++;
        } else {
            if (t->target >= 0) entry[t->target] |= 1 | JUMPED;
            if (t->exit >= 0) entry[t->exit] |= 1 | JUMPED;
            if (t->target >= 0 && t->target <= i) loops = 1;
        }
        if (t->continue_to >= 0) entry[t->continue_to] |= 1;
    }
    for (int64_t i = 0; i < n; i++) {
        if ((entry[i] & CALLED) && (entry[i] & JUMPED) && stub(s, i, o)) return n;
    }
    if (!loops) return n;
    for (int64_t i = 0; i < n; i++) {
        if (s[i].op != o->load && s[i].op != o->store) continue;
        int64_t k = 0;
        while (k < nl && loc[k] != s[i].operand0) k++;
        if (k == nl) loc[nl] = s[i].operand0, uses[nl] = 0, flags[nl] = 0, nl++;
        tix[i] = k;
        uses[k]++;
        if (s[i].op == o->store) flags[k] |= 1;
    }
    float_locals(s, n, o, entry, tix, flags, stack);
    int64_t chosen[LOCAL_REGS], nreg = 0, nstored = 0;
    for (; nreg < LOCAL_REGS; nreg++) { /* the most used, the lower number first among equals */
        int64_t best = NONE;
        for (int64_t k = 0; k < nl; k++) {
            if (flags[k] & FLOAT_TAKES || uses[k] <= calls * (1 + (flags[k] & 1))) continue;
            int taken = 0;
            for (int64_t j = 0; j < nreg; j++) taken |= chosen[j] == k;
            if (taken) continue;
            if (best == NONE || uses[k] > uses[best] || (uses[k] == uses[best] && loc[k] < loc[best])) best = k;
        }
        if (best == NONE) break;
        chosen[nreg] = best;
        nstored += flags[best] & 1;
    }
    if (nreg == 0) return n;
    int64_t out = 0; /* where each old step goes, then the steps moved there from the last */
    for (int64_t i = 0; i < n; i++) {
        entered[i] = out;
        if (i == 0) out += nreg;
        int leaves = stub(s, i, o) && !(entry[i] & CALLED);
        if (leaves || (s[i].op == o->jump && s[i].target_address != 0)) out += nstored;
        landing[i] = i == 0 ? out : entered[i];
        if (s[i].op == o->call) out += nstored;
        where[i] = out++;
        if (s[i].op == o->call) out += nreg;
    }
    where[n] = landing[n] = entered[n] = out;
    if (out > cap) return -1;
    for (int64_t i = n - 1; i >= 0; i--) {
        StepPlan t = s[i]; /* (read before anything is written over it: every write lands at i or later) */
        int64_t at = entered[i];
        if (i == 0) {
            for (int64_t j = 0; j < nreg; j++) s[at++] = step(o->fill_r[j], loc[chosen[j]], 0, t.position);
        }
        if (at < where[i]) {
            for (int64_t j = 0; j < nreg; j++) {
                if (flags[chosen[j]] & 1) s[at++] = step(o->spill_r[j], loc[chosen[j]], 0, t.position);
            }
        }
        for (int64_t j = 0; j < nreg && (t.op == o->load || t.op == o->store); j++) {
            if (loc[chosen[j]] == t.operand0) {
                t = step(t.op == o->load ? o->load_r[j] : o->store_r[j], 0, 0, t.position);
                break;
            }
        }
        s[where[i]] = t;
        if (t.op == o->call) {
            for (int64_t j = 0, k = where[i] + 1; j < nreg; j++) s[k++] = step(o->fill_r[j], loc[chosen[j]], 0, t.position);
        }
    }
    for (int64_t k = 0; k < out; k++) {
        StepPlan *t = &s[k];
        if (t->target < 0 && t->exit < 0) continue;
        if (t->target >= 0) t->target = t->op == o->call ? entered[t->target] : landing[t->target];
        if (t->exit >= 0) t->exit = landing[t->exit];
        if (t->continue_to >= 0) t->continue_to = landing[t->continue_to];
    }
    return out;
}

int64_t jit_form_trace(const FormOps *o, const int64_t *code, int64_t ncode, const int64_t *pcs, int64_t npcs,
                       int64_t stop_pc, int64_t kind, int64_t first_exit, int64_t link_address, int64_t superinstructions,
                       int64_t accounting, int64_t registers_on, StepPlan *out, int64_t cap, int64_t *exits,
                       int64_t *result, uint8_t *entry, int64_t *where, int64_t *stubs, int64_t *regs)
{
    /* code: three int64s per IR instruction (op, a, b); exits: four per exit
     * (id, resume pc, micro-ops, step); result: [kind, exits made];
     * stubs: three per guard or open call (step, resume pc, micro-ops).
     * cap: room for jit_form_room(npcs, registers_on) steps, the most a
     * path makes.  accounting: COUNT and TAKE_EXIT steps (trace.py's
     * docstring); registers_on: the registers pass (regs: its scratch).
     * Returns the steps made, -1 when `cap` is too small, or -2 when a
     * position is outside the code's `ncode` instructions. */
    int64_t n = 0, nstubs = 0, open = 0;
    if (cap < jit_form_room(npcs, registers_on)) return -1;
    for (int64_t r = 0; r < npcs; r++) {
        if (pcs[r] < 0 || pcs[r] >= ncode) return -2;
    }
    int64_t *calls = where;  /* (scratch until fusion: the open calls' steps) */
    for (int64_t r = 0; r < npcs; r++) {
        int64_t pc = pcs[r];
        int64_t op = code[3 * pc], a = code[3 * pc + 1], b = code[3 * pc + 2];
        int64_t next = r + 1 < npcs ? pcs[r + 1] : stop_pc;
        if (op == o->jump) continue;
        if (op == o->jz || op == o->jnz) {
            if (a == pc + 1) { /* both sides go to the same place: only the pop matters */
                out[n++] = step(o->drop, 0, 0, pc);
                continue;
            }
            int taken = next == a;
            stubs[3 * nstubs] = n, stubs[3 * nstubs + 1] = taken ? pc + 1 : a, stubs[3 * nstubs + 2] = r + 1;
            nstubs++;
            int zero = (op == o->jz) == taken; /* jz taken: the value was zero */
            out[n++] = step(zero ? o->guard_zero : o->guard_nonzero, 0, 0, pc);
            continue;
        }
        if (op == o->call) {
            calls[open++] = n;
            out[n] = step(op, a, b, pc);
            out[n].target = n + 1;
            n++;
            continue;
        }
        if (op == o->ret && open == 0) { /* out of the frame the trace started in */
            if (accounting) out[n++] = step(o->count, npcs, 0, pc);
            out[n++] = step(op, a, b, pc);
            kind = o->kind_return;
            continue;
        }
        if (op == o->ret) {
            int64_t call = calls[--open];
            out[n++] = step(op, a, b, pc);
            out[call].continue_to = n;
            continue;
        }
        out[n++] = step(op, a, b, pc);
    }
    for (int64_t k = 0; k < open; k++) { /* returns that happen off the path */
        stubs[3 * nstubs] = calls[k], stubs[3 * nstubs + 1] = out[calls[k]].position + 1, stubs[3 * nstubs + 2] = 0;
        nstubs++;
    }
    int64_t id = first_exit, nexits = 0;
    if (kind == o->kind_loop || kind == o->kind_link) {
        if (accounting) out[n++] = step(o->count, npcs, 0, stop_pc);
        out[n] = step(o->jump, 0, 0, stop_pc);
        if (kind == o->kind_loop) out[n].target = 0;
        else out[n].target_address = link_address;
        n++;
    } else if (kind != o->kind_return) {
        if (accounting) out[n++] = step(o->take_exit, npcs, id, stop_pc);
        out[n++] = step(o->exit, stop_pc, id, stop_pc);
        exits[0] = id++, exits[1] = stop_pc, exits[2] = npcs, exits[3] = n - 1;
        nexits = 1;
    }
    for (int64_t k = 0; k < nstubs; k++) {
        int64_t at = stubs[3 * k], resume = stubs[3 * k + 1], ops = stubs[3 * k + 2], stub = n;
        if (accounting) out[n++] = step(o->take_exit, ops, id, resume);
        out[n++] = step(o->exit, resume, id, resume);
        int64_t *e = exits + 4 * nexits++;
        e[0] = id++, e[1] = resume, e[2] = ops, e[3] = n - 1;
        if (out[at].op == o->call) out[at].continue_to = stub;
        else out[at].exit = stub;
    }
    if (registers_on) {
        n = registers(out, n, cap, o, entry, where, regs);
        if (n < 0) return -1;
        for (int64_t k = 0; k < nexits; k++) exits[4 * k + 3] = where[exits[4 * k + 3]];
    }
    if (superinstructions) {
        n = fuse(out, n, o, entry, where);
        for (int64_t k = 0; k < nexits; k++) exits[4 * k + 3] = where[exits[4 * k + 3]];
    }
    result[0] = kind, result[1] = nexits;
    return n;
}

/* trace.py's form_function: the whole function [start, end) as steps.  With
 * accounting, each basic block begins with a COUNT of its instructions (and
 * each exit stub with a TAKE_EXIT); jumps stay inside; a
 * jump out of the function, or a call of another function, leaves through an
 * exit stub (one per place and kind), a recursive call enters step 0.
 * is_label / ends_block: per op number, whether its operand is a label and
 * whether it ends a basic block.  exits: five per exit (id, resume pc,
 * micro-ops (0), step, a call?).  Scratch: leader (end - start + 1 bytes),
 * index and blen (end - start each), stubs (3 per stub, as many as
 * instructions), regs (the registers pass's, with registers_on).  cap:
 * room for jit_form_room(end - start, registers_on) steps. */
int64_t jit_form_function(const FormOps *o, const int64_t *code, int64_t start, int64_t end, int64_t first_exit,
                          const uint8_t *is_label, const uint8_t *ends_block, int64_t superinstructions,
                          int64_t accounting, int64_t registers_on, StepPlan *out, int64_t cap, int64_t *exits,
                          int64_t *nexits_out, uint8_t *leader, int64_t *index, int64_t *blen, int64_t *stubs,
                          uint8_t *entry, int64_t *where, int64_t *regs)
{
    int64_t len = end - start;
    if (len <= 0 || cap < jit_form_room(len, registers_on)) return -1;
    memset(leader, 0, (size_t)len + 1);
    leader[0] = 1;
    for (int64_t pc = start; pc < end; pc++) {
        int64_t op = code[3 * pc], a = code[3 * pc + 1];
        if (is_label[op] && a >= start && a < end) leader[a - start] = 1;
        if (ends_block[op]) leader[pc + 1 - start] = 1;
    }
    for (int64_t pc = end - 1, next = end; pc >= start; pc--) {
        if (leader[pc - start]) {
            blen[pc - start] = next - pc;
            next = pc;
        }
    }
    int64_t n = 0;
    for (int64_t pc = start; pc < end; pc++) { /* (with accounting) every leader is preceded by its COUNT */
        int64_t counted = accounting && leader[pc - start];
        n += counted;
        index[pc - start] = counted ? n - 1 : n;
        n++;
    }
    int64_t body = 0, tail = n, nstubs = 0;
    for (int64_t pc = start; pc < end; pc++) {
        int64_t op = code[3 * pc], a = code[3 * pc + 1], b = code[3 * pc + 2];
        if (accounting && leader[pc - start]) out[body++] = step(o->count, blen[pc - start], 0, pc);
        int64_t target = NONE, resume = NONE, call = 0;
        if (is_label[op]) {
            if (a >= start && a < end) target = index[a - start];
            else resume = a;
        } else if (op == o->call) {
            if (a == start) target = 0;
            else resume = a, call = 1;
        }
        if (resume != NONE) { /* an exit stub resuming at `resume`: one per place and kind */
            int64_t k = 0;
            while (k < nstubs && !(stubs[3 * k] == resume && stubs[3 * k + 1] == call)) k++;
            if (k == nstubs) {
                int64_t id = first_exit + nstubs;
                stubs[3 * k] = resume, stubs[3 * k + 1] = call, stubs[3 * k + 2] = tail;
                if (accounting) out[tail++] = step(o->take_exit, 0, id, resume);
                out[tail++] = step(o->exit, resume, id, resume);
                int64_t *e = exits + 5 * k;
                e[0] = id, e[1] = resume, e[2] = 0, e[3] = tail - 1, e[4] = call;
                nstubs++;
            }
            target = stubs[3 * k + 2];
        }
        out[body] = step(op, a, b, pc);
        out[body++].target = target;
    }
    if (registers_on) {
        tail = registers(out, tail, cap, o, entry, where, regs);
        if (tail < 0) return -1;
        for (int64_t k = 0; k < nstubs; k++) exits[5 * k + 3] = where[exits[5 * k + 3]];
    }
    if (superinstructions) {
        tail = fuse(out, tail, o, entry, where);
        for (int64_t k = 0; k < nstubs; k++) exits[5 * k + 3] = where[exits[5 * k + 3]];
    }
    *nexits_out = nstubs;
    return tail;
}
