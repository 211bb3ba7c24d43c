/* The copy-and-patch loop in C: the fast path of jit/codegen/stitch.py, which stays
 * the readable reference (the tests require identical bytes).  Python hands
 * over per-stencil patch plans and the packed steps; jit_layout places them
 * exactly as jit.codegen.stitch.layout does, and jit_stitch copies each step's code
 * and data and patches every hole, with the same range checks and the same
 * trampolines. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vm.h"

/* The relocation table (relocs.def): each type's number for the C side is
 * its row, and the row says how it is encoded. */
enum {
#define RELOC(name, number, machine, encoding, bits, shift, branch, becomes) name,
#include "relocs.def"
#undef RELOC
};

enum { ENC_ABS, ENC_ABS_U, ENC_ABS_S, ENC_ABS_X, ENC_PREL, ENC_PREL_S, ENC_PREL_X, ENC_MOVW, ENC_ADR, ENC_ADRP,
       ENC_LO12, ENC_BRANCH, ENC_GOT };
enum { BR_NONE, BR_MAYBE, BR_COND, BR_JUMP, BR_CALL };

typedef struct RelocRow {
    int encoding, bits, shift, branch;
} RelocRow;

static const RelocRow RELOCS[] = {
#define RELOC(name, number, machine, encoding, bits, shift, branch, becomes) {ENC_##encoding, bits, shift, BR_##branch},
#include "relocs.def"
#undef RELOC
};

static int
fits_signed(int64_t v, int bits)
{
    return v >= -((int64_t)1 << (bits - 1)) && v < ((int64_t)1 << (bits - 1));
}

static uint32_t
rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void
wr32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void
wr64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void
insn(uint8_t *p, uint32_t mask, uint32_t bits)
{
    wr32(p, (rd32(p) & ~mask) | (bits & mask));
}

static int
fits_either(int64_t v, int bits)
{
    return v >= -((int64_t)1 << (bits - 1)) && (bits >= 64 || v < ((int64_t)1 << bits));
}

static int
write_sized(uint8_t *p, int bits, uint64_t v)
{
    if (bits == 64) {
        wr64(p, v);
    } else {
        wr32(p, (uint32_t)v);
    }
    return 0;
}

/* 0: patched; 1: out of range; 2: misaligned or not patchable.  As
 * jit.codegen.patch's encoders, one case per encoding. */
static int
patch_one(uint8_t *p, int reloc, uint64_t value, uint64_t place)
{
    const RelocRow *r = &RELOCS[reloc];
    int64_t rel = (int64_t)(value - place);
    int64_t sv = (int64_t)value;
    switch (r->encoding) {
    case ENC_ABS:
        return write_sized(p, r->bits, value);
    case ENC_ABS_U:
        if (r->bits < 64 && (value >> r->bits)) return 1;
        return write_sized(p, r->bits, value);
    case ENC_ABS_S:
        if (!fits_signed(sv, r->bits)) return 1;
        return write_sized(p, r->bits, value);
    case ENC_ABS_X:
        if (!fits_either(sv, r->bits)) return 1;
        return write_sized(p, r->bits, value);
    case ENC_PREL:
        return write_sized(p, r->bits, (uint64_t)rel);
    case ENC_PREL_S:
        if (!fits_signed(rel, r->bits)) return 1;
        return write_sized(p, r->bits, (uint64_t)rel);
    case ENC_PREL_X:
        if (!fits_either(rel, r->bits)) return 1;
        return write_sized(p, r->bits, (uint64_t)rel);
    case ENC_MOVW:
        if (r->bits && r->bits < 64 && (value >> r->bits)) return 1;
        insn(p, 0xFFFFu << 5, (uint32_t)((value >> r->shift) & 0xFFFF) << 5);
        return 0;
    case ENC_ADR:
        if (!fits_signed(rel, r->bits)) return 1;
        insn(p, (3u << 29) | (0x7FFFFu << 5), ((uint32_t)(rel & 3) << 29) | ((uint32_t)((rel >> 2) & 0x7FFFF) << 5));
        return 0;
    case ENC_ADRP: {
        int64_t pages = (int64_t)((value & ~(uint64_t)0xFFF) - (place & ~(uint64_t)0xFFF));
        if (!fits_signed(pages, r->bits)) return 1;
        int64_t imm = pages >> 12;
        insn(p, (3u << 29) | (0x7FFFFu << 5), ((uint32_t)(imm & 3) << 29) | ((uint32_t)((imm >> 2) & 0x7FFFF) << 5));
        return 0;
    }
    case ENC_LO12:
        if (value & ((1u << r->shift) - 1)) return 2;
        insn(p, 0xFFFu << 10, (uint32_t)((value & 0xFFF) >> r->shift) << 10);
        return 0;
    case ENC_BRANCH: {
        if (rel & 3) return 2;
        if (!fits_signed(rel, r->bits)) return 1;
        uint32_t field = ((1u << (r->bits - 2)) - 1) << r->shift;
        insn(p, field, (uint32_t)(rel >> 2) << r->shift);
        return 0;
    }
    }
    return 2;
}

/* Whether the hole is a branch displacement (Target.is_branch_instruction):
 * the table says, except for x86-64 rel32 fields, where the opcode does. */
static int
is_branch(const uint8_t *code, int64_t off, int reloc, int64_t arch)
{
    int branch = RELOCS[reloc].branch;
    if (branch != BR_MAYBE) return branch != BR_NONE;
    switch (arch) {
    case ARCH_X86_64: /* e8 call, e9 jmp, 0f 80..8f jcc */
        if (off >= 1 && (code[off - 1] == 0xE8 || code[off - 1] == 0xE9)) return 1;
        return off >= 2 && code[off - 2] == 0x0F && code[off - 1] >= 0x80 && code[off - 1] <= 0x8F;
    }
    return 0;
}

static void
write_trampoline(uint8_t *p, uint64_t destination, const TargetPlan *target)
{
    memcpy(p, target->trampoline, TRAMPOLINE_SIZE);
    wr64(p + target->trampoline_address_at, destination);
}

/* Writes the direct jump from `place` to `destination` (Target.jump's, as
 * the target plan gives it) at `out`, the writable view of `place`, and
 * flushes the instruction cache there: its size, or 0 when the jump does
 * not reach (a trampoline must stand in: the caller's to write). */
int64_t
jit_write_jump(const TargetPlan *target, uint8_t *out, uint64_t place, uint64_t destination)
{
    uint8_t code[sizeof target->link_jump];
    int64_t at = target->link_field_at;
    memcpy(code, target->link_jump, (size_t)target->link_size);
    if (patch_one(code + at, (int)target->link_reloc, destination + (uint64_t)target->link_addend,
                  place + (uint64_t)at)) {
        return 0;
    }
    memcpy(out, code, (size_t)target->link_size);
    jit_flush_icache((uintptr_t)place, (uintptr_t)(place + (uint64_t)target->link_size));
    return target->link_size;
}

static int64_t
align_up(int64_t n, int64_t a)
{
    return (n + a - 1) / a * a;
}

/* Stack caching, as jit.codegen.stackcache.assign: rewrites each step's op to the
 * variant chosen for it, the cheapest code over the cache states (a
 * shortest path: per step, the cheapest way to leave in each state).  table
 * is laid out as vm.h's CACHE_* say; scratch holds nsteps + 1 values:
 * whether each step is an entry point (bit 32), and for each state out the
 * state in it was best reached from (CACHE_STATES fields of 4 bits). */
void
jit_cache_stack(StepPlan *steps, int64_t nsteps, const int32_t *table, int64_t *scratch)
{
    const int64_t entry_bit = (int64_t)1 << 32;
    memset(scratch, 0, (size_t)(nsteps + 1) * sizeof *scratch);
    scratch[0] = entry_bit;
    for (int64_t i = 0; i < nsteps; i++) {
        const StepPlan *s = &steps[i];
        if (s->target >= 0 && s->target < nsteps) scratch[s->target] |= entry_bit;
        if (s->exit >= 0 && s->exit < nsteps) scratch[s->exit] |= entry_bit;
        if (s->continue_to >= 0 && s->continue_to < nsteps) scratch[s->continue_to] |= entry_bit;
        if (table[CACHE_ROW * s->op + CACHE_ENTERS_IN_MEMORY]) scratch[i] |= entry_bit;
    }
    scratch[nsteps] = entry_bit;
    int64_t costs[2][CACHE_STATES]; /* (the step's and the next one's, swapped each step) */
    int64_t *cost = costs[0], *best = costs[1];
    unsigned live = 1; /* the states some way reaches, one bit each */
    cost[0] = 0;
    for (int64_t i = 0; i < nsteps; i++) {
        const int32_t *t = &table[CACHE_ROW * steps[i].op];
        int forced = (scratch[i + 1] & entry_bit) != 0;
        int64_t back = 0;
        unsigned reached = 0;
        for (unsigned rest = live; rest; rest &= rest - 1) {
            int in = __builtin_ctz(rest);
            const int32_t *b = &t[CACHE_BLOCK * in];
            int32_t n = forced ? 0 : b[CACHE_CANDIDATES];
            const int32_t *c = n ? &b[CACHE_FIRST] : &b[CACHE_TO_MEMORY];
            if (!n) {
                if (c[1] < 0) continue; /* (no way out of this state: a library without it) */
                n = 1;
            }
            for (int32_t k = 0; k < n; k++, c += 3) { /* (out state, variant, cost) */
                int out = (int)c[0];
                int64_t total = cost[in] + c[2];
                if (!(reached >> out & 1) || total < best[out]) {
                    reached |= 1u << out;
                    best[out] = total;
                    back = (back & ~((int64_t)15 << (4 * out))) | ((int64_t)in << (4 * out));
                }
            }
        }
        scratch[i] |= back;
        int64_t *swap = cost;
        cost = best;
        best = swap;
        live = reached;
    }
    /* (the last step leaves nothing cached; every reachable state has its
     * memory-to-memory way out, which the tests' libraries keep) */
    int out = 0;
    for (int64_t i = nsteps - 1; i >= 0; i--) {
        int in = (int)((scratch[i] >> (4 * out)) & 15);
        const int32_t *b = &table[CACHE_ROW * steps[i].op + CACHE_BLOCK * in];
        const int32_t *c = &b[CACHE_TO_MEMORY];
        for (int32_t k = 0; k < b[CACHE_CANDIDATES] && c[0] != out; k++) c = &b[CACHE_FIRST + 3 * k];
        steps[i].op = c[1];
        out = in;
    }
}

/* Fills code_at[0..nsteps], data_at[0..nsteps-1] and trampolines[0..1]
 * (offset, slots); returns the total size. */
int64_t
jit_layout(const StencilPlan *plans, const StepPlan *steps, int64_t nsteps, int64_t *code_at, int64_t *data_at,
           int64_t *trampolines)
{
    int64_t at = 0, slots = 0, nshort = 0, reach = 0;
    uint64_t helpers = 0;
    for (int64_t i = 0; i < nsteps; i++) {
        const StencilPlan *st = &plans[steps[i].op];
        code_at[i] = at;
        at += st->code_size;
        helpers |= st->helper_mask;
        slots += steps[i].target_address != 0;
        nshort += st->nshort;
        if (st->short_reach && (!reach || st->short_reach < reach)) {
            reach = st->short_reach;
        }
    }
    code_at[nsteps] = at;
    slots += __builtin_popcountll(helpers);
    if (reach && at >= reach) {
        slots += nshort;
    }
    int64_t tramp = align_up(at, TRAMPOLINE_SIZE);
    int64_t data = align_up(tramp + slots * TRAMPOLINE_SIZE, DATA_ALIGN);
    for (int64_t i = 0; i < nsteps; i++) {
        int64_t size = plans[steps[i].op].data_size;
        data_at[i] = data;
        if (size) {
            data = align_up(data + size, DATA_ALIGN);
        }
    }
    trampolines[0] = tramp;
    trampolines[1] = slots;
    return data;
}

/* A compile's first half in one call: copies the steps unless they are
 * already where `steps` is (the caller's stay as they were formed), chooses
 * their variants unless table is NULL
 * (jit_cache_stack, with scratch as its scratch) and lays them out
 * (jit_layout); returns the total size. */
int64_t
jit_plan(const StencilPlan *plans, const StepPlan *formed, int64_t nsteps, const int32_t *table, StepPlan *steps,
         int64_t *scratch, int64_t *code_at, int64_t *data_at, int64_t *trampolines)
{
    if (steps != formed) memcpy(steps, formed, (size_t)nsteps * sizeof *steps);
    if (table) jit_cache_stack(steps, nsteps, table, scratch);
    return jit_layout(plans, steps, nsteps, code_at, data_at, trampolines);
}

int64_t
jit_stitch(const StencilPlan *plans, const StepPlan *steps, int64_t nsteps, const int64_t *code_at,
           const int64_t *data_at, int64_t tramp_at, int64_t tramp_slots, int64_t total, uint8_t *out,
           uint64_t base, const uint64_t *helpers, const TargetPlan *target, uint64_t *tramp_dest,
           char *error, int64_t error_size)
{
    int64_t ntramp = 0;
    int64_t tramp_end = tramp_at + TRAMPOLINE_SIZE * tramp_slots;
    /* (the code is one stencil after another, every byte copied below; the
     * data's alignment gaps are zero, the trampoline area padding) */
    memset(out + code_at[nsteps], (int)target->pad, (size_t)(tramp_end - code_at[nsteps]));
    memset(out + tramp_end, 0, (size_t)(total - tramp_end));
    for (int64_t i = 0; i < nsteps; i++) {
        const StepPlan *s = &steps[i];
        const StencilPlan *st = &plans[s->op];
        memcpy(out + code_at[i], st->code, (size_t)st->code_size);
        if (st->data_size) {
            memcpy(out + data_at[i], st->data, (size_t)st->data_size);
        }
        int64_t after = s->continue_to >= 0 ? s->continue_to : i + 1;
        for (int64_t h = 0; h < st->nholes + st->ndata_holes; h++) {
            const HolePlan *hole = h < st->nholes ? &st->holes[h] : &st->data_holes[h - st->nholes];
            int64_t off = (h < st->nholes ? code_at[i] : data_at[i]) + hole->offset;
            uint64_t value;
            switch (hole->kind) {
            case HOLE_OPERAND0: value = (uint64_t)s->operand0; break;
            case HOLE_OPERAND1: value = (uint64_t)s->operand1; break;
            case HOLE_OPERAND2: value = (uint64_t)s->operand2; break;
            case HOLE_OPERAND3: value = (uint64_t)s->operand3; break;
            case HOLE_OPERAND0_X8: value = (uint64_t)s->operand0 * 8; break;
            case HOLE_OPERAND1_X8: value = (uint64_t)s->operand1 * 8; break;
            case HOLE_POSITION: value = (uint64_t)s->position; break;
            case HOLE_CONTINUE:
                if (after >= nsteps) goto nothing_follows;
                value = base + (uint64_t)code_at[after];
                break;
            case HOLE_TARGET:
                if (s->target_address) { value = (uint64_t)s->target_address; break; }
                if (s->target < 0) goto nothing_follows;
                value = base + (uint64_t)code_at[s->target];
                break;
            case HOLE_EXIT:
                if (s->exit < 0) goto nothing_follows;
                value = base + (uint64_t)code_at[s->exit];
                break;
            case HOLE_HELPER: value = helpers[hole->helper]; break;
            case HOLE_CODE: value = base + (uint64_t)code_at[i]; break;
            case HOLE_DATA: value = base + (uint64_t)data_at[i]; break;
            default: goto nothing_follows;
            }
            uint64_t place = base + (uint64_t)off;
            int r = patch_one(out + off, hole->reloc, value + (uint64_t)hole->addend, place);
            if (r == 1 && is_branch(out, off, hole->reloc, target->arch)) {
                uint64_t bias = (uint64_t)target->branch_bias;
                uint64_t dest = value + (uint64_t)hole->addend + bias;
                int64_t t = 0;
                while (t < ntramp && tramp_dest[t] != dest) t++;
                if (t == ntramp) {
                    if (ntramp >= tramp_slots) {
                        snprintf(error, (size_t)error_size, "step %lld: out of trampoline slots", (long long)i);
                        return -1;
                    }
                    write_trampoline(out + tramp_at + TRAMPOLINE_SIZE * t, dest, target);
                    tramp_dest[ntramp++] = dest;
                }
                r = patch_one(out + off, hole->reloc, base + (uint64_t)(tramp_at + TRAMPOLINE_SIZE * t) - bias, place);
            }
            if (r) {
                snprintf(error, (size_t)error_size, "step %lld: relocation %d at offset %lld: %s", (long long)i,
                         (int)hole->reloc, (long long)hole->offset, r == 1 ? "out of range" : "misaligned");
                return -1;
            }
        }
        continue;
    nothing_follows:
        snprintf(error, (size_t)error_size, "step %lld has a hole with nothing to fill it", (long long)i);
        return -1;
    }
    return ntramp;
}
