/* What eBPF's operations compute (RFC 9669), as plain functions of their
 * operands, for bodies.h.  Division and modulo by zero, signed overflow and
 * oversized shifts have the RFC's exact results; no C undefined behaviour. */
#ifndef EBPF_SEMANTICS_H
#define EBPF_SEMANTICS_H

#include "state.h"

typedef uint16_t __attribute__((aligned(1), may_alias)) u16u;
typedef uint32_t __attribute__((aligned(1), may_alias)) u32u;
typedef uint64_t __attribute__((aligned(1), may_alias)) u64u;
typedef int8_t __attribute__((may_alias)) s8u;
typedef int16_t __attribute__((aligned(1), may_alias)) s16u;
typedef int32_t __attribute__((aligned(1), may_alias)) s32u;

static inline uint64_t div64(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static inline uint64_t mod64(uint64_t a, uint64_t b) { return b ? a % b : a; }
static inline uint32_t div32(uint32_t a, uint32_t b) { return b ? a / b : 0; }
static inline uint32_t mod32(uint32_t a, uint32_t b) { return b ? a % b : a; }

static inline uint64_t sdiv64(uint64_t a, uint64_t b)
{
    if (b == 0) return 0;
    if (b == (uint64_t)-1) return 0 - a; /* INT64_MIN / -1 wraps to INT64_MIN */
    return (uint64_t)((int64_t)a / (int64_t)b);
}

static inline uint64_t smod64(uint64_t a, uint64_t b)
{
    if (b == 0) return a;
    if (b == (uint64_t)-1) return 0;
    return (uint64_t)((int64_t)a % (int64_t)b);
}

static inline uint32_t sdiv32(uint32_t a, uint32_t b)
{
    if (b == 0) return 0;
    if (b == (uint32_t)-1) return 0 - a;
    return (uint32_t)((int32_t)a / (int32_t)b);
}

static inline uint32_t smod32(uint32_t a, uint32_t b)
{
    if (b == 0) return a;
    if (b == (uint32_t)-1) return 0;
    return (uint32_t)((int32_t)a % (int32_t)b);
}

static inline uint64_t arsh64(uint64_t a, uint64_t n) { return (uint64_t)((int64_t)a >> (n & 63)); }
static inline uint32_t arsh32(uint32_t a, uint64_t n) { return (uint32_t)((int32_t)a >> (n & 31)); }

/* May [addr, addr + size) be touched?  (Unsigned arithmetic: an address
 * below a region wraps to a huge offset.) */
static inline int in_bounds(const EbpfState *s, uint64_t addr, uint64_t size)
{
    uint64_t m = addr - s->mem, k = addr - s->stack, v = addr - s->maps;
    return (m < s->mem_len && s->mem_len - m >= size) || (k < s->stack_len && s->stack_len - k >= size) ||
           (v < s->maps_len && s->maps_len - v >= size);
}

/* -- helpers -------------------------------------------------------------------------- */

enum { HELPER_GO_ON = 0, HELPER_EXIT = 1, HELPER_FAILED = 2 };
#define E2BIG 7
#define EEXIST 17
#define EINVAL 22
#define ENOENT 2

static inline uint64_t pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

static inline int same_bytes(const uint8_t *a, const uint8_t *b, uint64_t n)
{
    for (uint64_t k = 0; k < n; k++) {
        if (a[k] != b[k]) return 0;
    }
    return 1;
}

static inline void copy_bytes(uint8_t *to, const uint8_t *from, uint64_t n)
{
    for (uint64_t k = 0; k < n; k++) {
        to[k] = from[k];
    }
}

/* The map a handle names (its descriptor), or 0. */
static inline const uint64_t *map_of(const EbpfState *s, uint64_t handle)
{
    uint64_t off = handle - s->mapdefs, size = 8 * MAPDEF_WORDS;
    if (off % size != 0 || off / size >= s->nmaps) return 0;
    return (const uint64_t *)(uintptr_t)handle;
}

/* A hash map's entry for `key`, or (free = 1) its first free entry, or 0. */
static inline uint8_t *hash_entry(const EbpfState *s, const uint64_t *map, const uint8_t *key, int free)
{
    uint64_t stride = HASH_USED_BYTES + pad8(map[1]) + pad8(map[2]);
    uint8_t *base = (uint8_t *)(uintptr_t)(s->maps + map[4]);
    for (uint64_t k = 0; k < map[3]; k++) {
        uint8_t *e = base + k * stride;
        uint64_t used = *(uint64_t *)e;
        if (free ? !used : used && same_bytes(e + HASH_USED_BYTES, key, map[1])) return e;
    }
    return 0;
}

/* Helper `id` with r1-r5 as its arguments, r0 its result (RFC 9669 leaves
 * which helpers exist to the platform; these are the conformance suite's
 * unwind (5) and Linux's map helpers 1-3 on array and hash maps). */
static inline int call_helper(EbpfState *s, uint64_t id)
{
    uint64_t *r = s->r;
    if (id == 5) {
        r[0] = r[1];
        return r[1] == 0 ? HELPER_EXIT : HELPER_GO_ON;
    }
    if (id < 1 || id > 3) {
        s->error = ERR_HELPER;
        s->aux = id;
        return HELPER_FAILED;
    }
    const uint64_t *map = map_of(s, r[1]);
    if (!map) {
        s->error = ERR_BAD_MAP;
        s->aux = r[1];
        return HELPER_FAILED;
    }
    uint64_t key_size = map[1], value_size = map[2];
    if (!in_bounds(s, r[2], key_size) || (id == 2 && !in_bounds(s, r[3], value_size))) {
        s->error = ERR_MEMORY;
        s->aux = in_bounds(s, r[2], key_size) ? r[3] : r[2];
        s->aux2 = in_bounds(s, r[2], key_size) ? value_size : key_size;
        return HELPER_FAILED;
    }
    const uint8_t *key = (const uint8_t *)(uintptr_t)r[2];
    uint64_t flags = r[4];
    if (map[0] == MAP_ARRAY) {
        uint32_t index = *(const u32u *)key;
        uint8_t *value = (uint8_t *)(uintptr_t)(s->maps + map[4] + (uint64_t)index * value_size);
        if (id == 1) {
            r[0] = index < map[3] ? (uint64_t)(uintptr_t)value : 0;
        } else if (id == 2) {
            if (flags > 2) r[0] = (uint64_t)-EINVAL;
            else if (index >= map[3]) r[0] = (uint64_t)-E2BIG;
            else if (flags == 1) r[0] = (uint64_t)-EEXIST;
            else {
                copy_bytes(value, (const uint8_t *)(uintptr_t)r[3], value_size);
                r[0] = 0;
            }
        } else {
            r[0] = (uint64_t)-EINVAL;
        }
        return HELPER_GO_ON;
    }
    uint8_t *found = hash_entry(s, map, key, 0);
    if (id == 1) {
        r[0] = found ? (uint64_t)(uintptr_t)(found + HASH_USED_BYTES + pad8(key_size)) : 0;
    } else if (id == 2) {
        if (flags > 2) r[0] = (uint64_t)-EINVAL;
        else if (found && flags == 1) r[0] = (uint64_t)-EEXIST;
        else if (!found && flags == 2) r[0] = (uint64_t)-ENOENT;
        else {
            uint8_t *e = found ? found : hash_entry(s, map, key, 1);
            if (!e) {
                r[0] = (uint64_t)-E2BIG;
            } else {
                *(uint64_t *)e = 1;
                copy_bytes(e + HASH_USED_BYTES, key, key_size);
                copy_bytes(e + HASH_USED_BYTES + pad8(key_size), (const uint8_t *)(uintptr_t)r[3], value_size);
                r[0] = 0;
            }
        }
    } else {
        if (found) *(uint64_t *)found = 0;
        r[0] = found ? 0 : (uint64_t)-ENOENT;
    }
    return HELPER_GO_ON;
}

#endif
