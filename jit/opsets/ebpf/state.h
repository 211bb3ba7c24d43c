/* The eBPF machine's state, shared by the stencils, the C interpreter and
 * opset.py (which reads the field order from here: every field is 64 bits,
 * so a field's offset is 8 times its index, on either target).
 *
 * Memory a program may touch: its input buffer [mem, mem + mem_len), its
 * stack [stack, stack + stack_len), MAX_FRAMES frames of STACK_SIZE bytes
 * (r10 points at the top of the active frame), and its maps' keys and
 * values [maps, maps + maps_len).  Every access is checked.  The maps'
 * descriptors (MAPDEF_WORDS words each, at mapdefs) are out of its reach: a
 * map's handle is the address of its descriptor, which only helpers read.
 */
#ifndef EBPF_STATE_H
#define EBPF_STATE_H

#include <stdint.h>

#define PRESERVE_NONE __attribute__((preserve_none))
#define MUSTTAIL __attribute__((musttail))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

enum {
    STACK_SIZE = 512,      /* bytes per frame (RFC 9669) */
    MAX_FRAMES = 8,        /* the program and up to 7 nested local calls */
    FRAME_WORDS = 6,       /* a saved frame: return point, r6-r9, r10 */
    MAPDEF_WORDS = 5,      /* a map: type, key_size, value_size, max_entries, offset of its data in maps */
    MAP_HASH = 1,          /* (map types, as Linux numbers them) */
    MAP_ARRAY = 2,
    HASH_USED_BYTES = 8,   /* a hash map's entry: in use, then key and value, each padded to 8 bytes */
    LOOP_BUDGET = 10000000, /* times a run may reach the target of a backward jump */
    OFF_BIAS = 32768,      /* steps carry offset + OFF_BIAS: never negative (template.c) */
};

enum {
    ST_RUNNING = 0,
    ST_EXITED = 1,
    ST_ERROR = 2,
};

enum {
    ERR_MEMORY = 1,        /* aux: address, aux2: size */
    ERR_MISALIGNED = 2,    /* an atomic access that is not naturally aligned */
    ERR_HELPER = 3,        /* aux: the helper's number */
    ERR_CALL_DEPTH = 4,
    ERR_RUNTIME_CALL = 5,  /* aux: the function's number */
    ERR_FELL_OFF = 6,      /* ran past the last instruction */
    ERR_BAD_MAP = 7,       /* a map helper's first argument is no map's handle; aux: it */
    ERR_BUDGET = 8,        /* LOOP_BUDGET spent: a loop that does not end? */
};

typedef struct EbpfState {
    uint64_t r[11];        /* r0-r10 */
    uint64_t mem;
    uint64_t mem_len;
    uint64_t stack;
    uint64_t stack_len;
    uint64_t maps;
    uint64_t maps_len;
    uint64_t mapdefs;
    uint64_t nmaps;
    uint64_t depth;        /* local calls entered and not returned */
    uint64_t budget;       /* backward-jump targets still allowed (LOOP_BUDGET at the start) */
    uint64_t status;       /* ST_* */
    uint64_t error;        /* ERR_* when status is ST_ERROR */
    uint64_t pc;           /* instruction index of the error */
    uint64_t aux;
    uint64_t aux2;
    uint64_t frames[MAX_FRAMES * FRAME_WORDS];
} EbpfState;

typedef PRESERVE_NONE void (*ebpf_fn)(EbpfState *);

#define OP(name, opcode, field, value) OP_##name,
enum { 
#include "ops.def"
};
#undef OP

#endif
