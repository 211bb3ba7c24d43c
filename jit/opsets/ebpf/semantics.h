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
    uint64_t m = addr - s->mem, k = addr - s->stack;
    return (m < s->mem_len && s->mem_len - m >= size) || (k < s->stack_len && s->stack_len - k >= size);
}

#endif
