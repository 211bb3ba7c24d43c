/* The VM state shared by the stencils, the C interpreters, the runtime (via
 * cffi) and the emulator.  Every field is 64 bits wide so the layout is the
 * same on x86-64 and AArch64, which lets the emulator map one state for
 * either target.  The block between the cdef markers is handed to cffi as it
 * is, so it must stay free of preprocessor directives.
 */
#ifndef JIT_VM_H
#define JIT_VM_H

#include <stdint.h>

#define PRESERVE_NONE __attribute__((preserve_none))
#define MUSTTAIL __attribute__((musttail))

/* cdef-begin */
typedef union Slot {
    int64_t i;
    uint64_t u;
    double f;
} Slot;

typedef struct Frame {
    int64_t ret_pc;        /* IR position to resume at in the caller */
    void *ret_code;        /* machine code to resume at, or NULL */
    Slot *fp;              /* the caller's locals */
} Frame;

typedef struct VMState {
    Slot *mem;             /* the program's memory array */
    int64_t mem_size;      /* in slots */
    Slot *stack_limit;     /* one past the last usable stack slot */
    Frame *frames;         /* call frames, frames[0 .. depth) in use */
    int64_t depth;
    int64_t max_depth;
    const int64_t *args;   /* program arguments */
    int64_t nargs;
    const char *const *strings;   /* string literals for print_str */
    const int64_t *string_lens;
    char *out;             /* output buffer, grown by the helpers */
    int64_t out_len;
    int64_t out_cap;
    int64_t status;        /* VM_RUNNING, VM_HALTED, VM_ERROR, VM_EXITED */
    int64_t error;         /* VM_ERR_* when status is VM_ERROR */
    int64_t pc;            /* IR position where execution left */
    Slot *sp;              /* operand stack pointer when execution left */
    Slot *fp;              /* locals of the active frame when it left */
    void *entry;           /* machine code the shim jumps to */
    int64_t exit_index;    /* which side exit was taken */
    int64_t *counters;     /* tier 1: per IR position, back-edges left before it is hot */
    int64_t *call_counters; /* tier 1: per function start, calls left before it is hot */
    int64_t *exit_counts;  /* per side exit: how often it was taken */
    int64_t trace_ops;     /* micro-ops executed in traces */
    int64_t interp_ops;    /* micro-ops executed by tier 1 */
} VMState;

/* One instruction as the C interpreters read it: the IR's opcode and its
 * resolved operands (a jump's target index is in a). */
typedef struct Inst {
    int64_t op;
    int64_t a;
    int64_t b;
} Inst;

/* Tier 1 records the path a hot loop takes: the IR positions it executes,
 * until it is back at `start`, reaches another trace's head, or has
 * recorded `max` instructions. */
typedef struct Recorder {
    int64_t *pcs;
    int64_t len;
    int64_t max;
    int64_t start;
    const int8_t *heads;   /* nonzero where a trace starts */
    int64_t depth;         /* calls entered and not yet returned, on the path */
} Recorder;

/* Patch plans for the C stitcher (stencils/stitch.c). */
typedef struct HolePlan {
    int64_t offset;
    int64_t reloc;     /* index in relocs.def */
    int64_t kind;      /* what fills it */
    int64_t helper;    /* which helper, for helper holes */
    int64_t addend;
} HolePlan;

typedef struct StencilPlan {
    const uint8_t *code;
    int64_t code_size;
    const uint8_t *data;
    int64_t data_size;
    const HolePlan *holes;
    int64_t nholes;
    const HolePlan *data_holes;
    int64_t ndata_holes;
    uint64_t helper_mask;    /* helpers it calls, one bit each (for layout) */
    int64_t nshort;          /* short-reach branches (not to helpers) */
    int64_t short_reach;     /* the shortest such reach in bytes, or 0 */
} StencilPlan;

typedef struct StepPlan {
    int64_t op;
    int64_t operand0;
    int64_t operand1;
    int64_t position;
    int64_t target;          /* step index, or -1 */
    int64_t exit;            /* step index, or -1 */
    int64_t continue_to;     /* step index, or -1: the next one */
    int64_t target_address;  /* or 0 */
    int64_t operand2;        /* (op sets whose instructions have more operands: jit.opsets) */
    int64_t operand3;
} StepPlan;

/* What the C stitcher needs of the target (jit.targets.Target), so that it
 * knows no architecture of its own. */
typedef struct TargetPlan {
    int64_t arch;                  /* ARCH_* */
    int64_t pad;                   /* the byte that fills gaps in code */
    int64_t branch_bias;           /* a branch displacement counts from the hole plus this */
    int64_t trampoline_address_at; /* where the address goes in the trampoline */
    uint8_t trampoline[16];        /* TRAMPOLINE_SIZE bytes that jump through that address */
    uint8_t link_jump[8];          /* the direct jump linking writes, displacement zero (Target.link_jump) */
    int64_t link_size;             /* its bytes */
    int64_t link_reloc;            /* the relocation (its row in relocs.def) that fills in the displacement */
    int64_t link_field_at;         /* where */
    int64_t link_addend;
} TargetPlan;

/* The op numbers and trace kinds trace forming in C (form.c) needs, from
 * the op table and jit.codegen.trace (jit.codegen.cform fills it once). */
enum {
    FLOAT_FUSED = 4, /* fadd, fsub, fmul, fdiv: FormOps.float_* in this order */
    FLOAT_ADD = 0,
    FLOAT_MUL = 2,
    COMPARES = 6,    /* eq, ne, lt, le, gt, ge: FormOps.compare, jump_if and guard_if in this order */
    /* How many of a frame's locals compiled code can keep in pinned
     * registers (jit_fn's reg0..reg2): the `registers` pass
     * (jit/codegen/passes.py, and form.c's registers()) chooses which, and
     * the LOAD_Rj, STORE_Rj, FILL_Rj and SPILL_Rj ops of ops.def reach them. */
    LOCAL_REGS = 3,
    REGISTER_SCRATCH = 9, /* int64s a step the registers pass needs as scratch (form.c) */
    /* FormOps.float_use, per op: what the scan for float locals sees in it. */
    FLOAT_CLEARS = 1, /* the stack is unknown after it (a transfer, or an effect set by its operand) */
    FLOAT_TAKES = 2,  /* it reads floats from what it pops */
    FLOAT_MAKES = 4,  /* what it pushes is a float */
};

typedef struct FormOps {
    int64_t load, store, push_int, add, sub;                    /* fusion's heads and tails */
    int64_t float_op[FLOAT_FUSED];
    int64_t inc_local, load_addk, load2, store_load, addk;      /* the superinstructions */
    int64_t float_ll[FLOAT_FUSED], float_l[FLOAT_FUSED], fmul_fadd;
    int64_t compare[COMPARES], jump_if[COMPARES], guard_if[COMPARES]; /* lt; jnz -> jlt; lt; guard_nonzero -> guard_lt */
    int64_t jump, jz, jnz, call, ret, drop, guard_zero, guard_nonzero, count, take_exit, exit;
    int64_t kind_loop, kind_link, kind_exit, kind_return;
    int64_t dup, swap, over;                                    /* (the registers pass) */
    int64_t load_r[LOCAL_REGS], store_r[LOCAL_REGS], fill_r[LOCAL_REGS], spill_r[LOCAL_REGS], inc_r[LOCAL_REGS];
    const int8_t *pops, *pushes;                                /* per op: its stack effect (op table) */
    const uint8_t *float_use;                                   /* per op: FLOAT_* */
} FormOps;

/* Steps a path or function of n positions can form into, with the
 * registers pass or without: the room jit_form_trace and
 * jit_form_function ask for. */
int64_t jit_form_room(int64_t n, int64_t registers);

int64_t jit_form_trace(const FormOps *ops, const int64_t *code, int64_t ncode, const int64_t *pcs, int64_t npcs,
                       int64_t stop_pc, int64_t kind, int64_t first_exit, int64_t link_address, int64_t superinstructions,
                       int64_t accounting, int64_t registers, StepPlan *out, int64_t cap, int64_t *exits,
                       int64_t *result, uint8_t *entry, int64_t *where, int64_t *stubs, int64_t *regs);
int64_t jit_form_function(const FormOps *o, const int64_t *code, int64_t start, int64_t end, int64_t first_exit,
                          const uint8_t *is_label, const uint8_t *ends_block, int64_t superinstructions,
                          int64_t accounting, int64_t registers, StepPlan *out, int64_t cap, int64_t *exits,
                          int64_t *nexits_out, uint8_t *leader, int64_t *index, int64_t *blen, int64_t *stubs,
                          uint8_t *entry, int64_t *where, int64_t *regs);
void jit_cache_stack(StepPlan *steps, int64_t nsteps, const int32_t *table, int64_t *scratch);
int64_t jit_layout(const StencilPlan *plans, const StepPlan *steps, int64_t nsteps, int64_t *code_at,
                   int64_t *data_at, int64_t *trampolines);
int64_t jit_plan(const StencilPlan *plans, const StepPlan *formed, int64_t nsteps, const int32_t *table,
                 StepPlan *steps, int64_t *scratch, int64_t *code_at, int64_t *data_at, int64_t *trampolines);
int64_t jit_write_jump(const TargetPlan *target, uint8_t *out, uint64_t place, uint64_t destination);
int64_t jit_stitch(const StencilPlan *plans, const StepPlan *steps, int64_t nsteps, const int64_t *code_at,
                   const int64_t *data_at, int64_t tramp_at, int64_t tramp_slots, int64_t total, uint8_t *out,
                   uint64_t base, const uint64_t *helpers, const TargetPlan *target, uint64_t *tramp_dest,
                   char *error, int64_t error_size);

/* The whole compile of a recorded path or a hot function (compile.c):
 * jit_compile_form forms, chooses variants and lays out;
 * jit_compile_stitch stitches into the region the caller allocated for
 * `size` bytes, and makes the instruction cache coherent; jit_compile
 * (below) does both, into the arena's open run.  The job holds
 * what stays from compile to compile (set once by jit.codegen.ccompile) and
 * the scratch it reuses, `cap` steps' worth, grown by the caller. */
typedef struct CompileJob {
    const FormOps *ops;
    const StencilPlan *plans;
    const int32_t *table;          /* the stack-caching table, or NULL */
    const uint64_t *helpers;
    const TargetPlan *target;
    const uint8_t *is_label;       /* per op number (jit_form_function) */
    const uint8_t *ends_block;
    int64_t superinstructions;
    int64_t accounting;
    int64_t registers;             /* the registers pass (form.c) */
    int64_t cap;                   /* steps the scratch below has room for */
    StepPlan *formed;              /* cap: the steps as formed */
    StepPlan *chosen;              /* cap: with their stack-caching variants */
    int64_t *exits;                /* 5 * cap */
    int64_t *code_at;              /* cap + 1 */
    int64_t *data_at;              /* cap */
    int64_t *stubs;                /* 3 * cap */
    int64_t *index;                /* cap */
    int64_t *blen;                 /* cap */
    int64_t *where;                /* cap + 1 (fusion's scratch, then the stack-cache choice's) */
    uint8_t *entry;                /* cap + 1 */
    uint8_t *leader;               /* cap + 1 */
    int64_t *regs;                 /* REGISTER_SCRATCH * (cap + 1): the registers pass's scratch */
    uint64_t *tramp_dest;          /* tramp_room */
    int64_t tramp_room;
    char *error;                   /* error_size bytes: why a stitch failed */
    int64_t error_size;
    /* What the last jit_compile_form made. */
    int64_t nsteps;
    int64_t nexits;
    int64_t exit_width;            /* int64s per exit: 4 for a path, 5 for a function */
    int64_t kind;                  /* how a path ends (FormOps kind_*) */
    int64_t size;
    int64_t tramp_at;
    int64_t tramp_slots;
} CompileJob;

int64_t jit_compile_form(CompileJob *job, const int64_t *code, int64_t ncode, const int64_t *pcs, int64_t npcs,
                         int64_t stop_pc, int64_t kind, int64_t first_exit, int64_t link_address, int64_t end);
int64_t jit_compile_stitch(CompileJob *job, uint64_t out, uint64_t base, int64_t *record);
int64_t jit_record_words(const CompileJob *job); /* the int64s jit_compile_stitch writes to `record` */

/* Where jit_compile puts code: the open run of the code arena
 * (jit.runtime.memory), part of a dual-mapped chunk, run at `rx` and
 * written at `rw`; bytes from `top` on are free, handed out `granule` at a
 * time.  `need` says how much a compile that did not fit wanted. */
typedef struct CodeRun {
    uint64_t rx;
    uint64_t rw;
    int64_t size;
    int64_t top;
    int64_t granule;
    int64_t need;
    int64_t status;                /* why the last jit_compile returned NULL (a JitCompileStatus) */
} CodeRun;

/* Why jit_compile returned NULL (CodeRun.status). */
enum JitCompileStatus {
    JIT_COMPILE_SCRATCH = -1,  /* the job's scratch is too small: grow it (4 * n + 4 steps) */
    JIT_COMPILE_OUTSIDE = -2,  /* the path names a position outside the code */
    JIT_COMPILE_RUN = -3,      /* the run has no room for run->need bytes: give it another */
    JIT_COMPILE_TRAMPS = -4,   /* more trampolines than job->tramp_room: grow it to job->tramp_slots */
    JIT_COMPILE_STITCH = -5,   /* stitching failed: the message is in job->error */
    JIT_COMPILE_MEMORY = -6    /* malloc failed */
};

/* The head of jit_compile's record: where the code is and what the compile
 * made.  After it, as jit_compile_stitch copies them: the formed steps, the
 * stencil each step was stitched from (an op number), code_at, data_at and
 * the exits. */
typedef struct RecordHeader {
    int64_t address;               /* where the code runs */
    int64_t taken;                 /* bytes taken from the run for it */
    int64_t nsteps;
    int64_t nexits;
    int64_t exit_width;
    int64_t kind;
    int64_t tramp_at;
    int64_t tramp_slots;
    int64_t trampolines;           /* trampoline slots used */
    int64_t size;                  /* bytes of code, trampolines and data */
    int64_t words;                 /* int64s after the header (jit_record_words) */
} RecordHeader;

/* The whole compile in one call: jit_compile_form, then the code's bytes
 * taken from the run and stitched there.  args: the code array's address,
 * its instructions, the path's address, its length, stop_pc, kind,
 * first_exit, link_address and end, as jit_compile_form takes them.
 * Returns the compile's record (a RecordHeader, then what
 * jit_compile_stitch copies), malloc'd, for jit_record_free; or NULL, with
 * run->status saying why. */
int64_t *jit_compile(CompileJob *job, CodeRun *run, const int64_t *args);
void jit_record_free(int64_t *record);

void run_switch(VMState *state, const Inst *code, int64_t pc);
void run_tier1(VMState *state, const Inst *code, int64_t pc);
void run_record(VMState *state, const Inst *code, int64_t pc, Recorder *rec);
void run_tailcall(VMState *state, const Inst *code, int64_t pc);

/* A compile jit_run_tiers made: its record (jit_compile's), the first
 * position of its path (a loop header, or where a side exit resumes), the
 * path's length, and whether it is a side trace. */
typedef struct LoggedCompile {
    int64_t *record;
    int64_t start;
    int64_t ops;
    int64_t side;
} LoggedCompile;

/* A side exit jit_run_tiers linked: to `destination`, after it was taken
 * `before` times; `patched` is 0 when the direct jump did not reach and
 * the controller must write a trampoline. */
typedef struct LoggedLink {
    int64_t exit_id;
    int64_t destination;
    int64_t before;
    int64_t patched;
} LoggedLink;

/* The loop between the tiers (stencils/tiers.c): tier 1, and the traces
 * it hands over to, until something needs the tiering controller. */
typedef struct TierLoop {
    int64_t (*enter)(VMState *state); /* the shim: runs the code at state->entry */
    void **trace_at;       /* per IR position: the trace starting there, or NULL */
    int64_t ncode;         /* IR positions */
    int64_t *returns;      /* per exit id: times it came back (counted here, without accounting) */
    const int64_t *passes; /* with accounting: per exit id, the passes the code counted; else NULL */
    uint8_t *settled;      /* per exit id: nonzero once linked, or never to be */
    int64_t nexits;        /* room in returns, passes and settled */
    int64_t hot_exit;      /* times an exit is taken before the controller hears of it */
    int64_t entries;       /* traces entered from tier 1 */
    int64_t exits;         /* returns from compiled code to tier 1 (every exit id, -1 too) */
    /* Loop and side traces recorded and compiled here, and exits linked,
     * with no call into Python (job NULL: the controller does all of it). */
    CompileJob *job;       /* its switches set and its scratch grown for rec->max steps */
    CodeRun *run;          /* the arena's open run: a compile that does not fit goes to the controller */
    Recorder *rec;
    int8_t *heads;         /* the recorder's: nonzero where a trace starts */
    const int64_t *form_code; /* the program's code as form.c reads it */
    int64_t never;         /* the tier-1 counter of a header not to be traced (jit.limits.NEVER) */
    int64_t next_exit;     /* the first exit id the next compile takes (the controller's too) */
    LoggedCompile *log;    /* compiles made here that the controller has not taken yet */
    int64_t nlog;
    int64_t log_cap;       /* a full log sends the next hot header or exit to the controller */
    LoggedLink *links;     /* exits linked here, likewise */
    int64_t nlinks;
    int64_t links_cap;
    uint64_t *exit_at;     /* per exit id: where its code is (jit_note_exits), 0 where the controller decides */
    uint64_t *exit_rw;     /* the same bytes' writable view */
    int64_t pending_exit;  /* with VM_HOT_RECORDED: the exit the path was recorded for, or -1 (a loop header) */
    int64_t hot_loops;     /* headers recorded here (compiled, or found not to be traced) */
    int64_t record_ns;     /* time recording here, and compiling and installing (CLOCK_MONOTONIC) */
    int64_t compile_ns;
} TierLoop;
int64_t jit_run_tiers(VMState *state, const Inst *code, int64_t pc, TierLoop *loop);
void jit_note_exits(TierLoop *loop, const int64_t *record, int64_t view_offset);
int64_t jit_trace_loop(VMState *state, const Inst *code, int64_t header, TierLoop *loop);
int64_t jit_compile_paths(TierLoop *loop, const int64_t *rows, int64_t n);
void vm_free_output(VMState *state);
void jit_flush_icache(uintptr_t start, uintptr_t end);
int64_t print_int(VMState *state, int64_t value);
int64_t print_float(VMState *state, double value, int64_t precision);
int64_t print_byte(VMState *state, int64_t value);
int64_t print_str(VMState *state, int64_t index);
enum {
    VM_RUNNING = 0,
    VM_HALTED = 1,
    VM_ERROR = 2,
    VM_EXITED = 3,
    VM_HOT = 4,       /* tier 1 reached a hot loop header (pc) */
    VM_RECORDED = 5,  /* recording stopped at pc */
    VM_HOT_CALL = 6,  /* tier 1 called a hot function (pc: its first instruction) */
    VM_EXIT_HOT = 7,  /* (jit_run_tiers) exit exit_index came back hot_exit times; pc: where it resumes */
    VM_HOT_RECORDED = 8, /* (jit_run_tiers) a hot header's or hot exit's path is in the loop's recorder
                            (start: the header, or where the exit resumes; pc: where it stopped), for the
                            controller to compile (TierLoop.pending_exit says which) */
};

enum {
    VM_ERR_NONE = 0,
    VM_ERR_DIV_ZERO = 1,
    VM_ERR_MEM_RANGE = 2,
    VM_ERR_CALL_DEPTH = 3,
    VM_ERR_STACK_OVERFLOW = 4,
    VM_ERR_OUTPUT = 5,
};

/* What fills a hole, as the C stitcher numbers it (jit.build.stencils.HoleKind
 * has the same names; jit.vmdef reads these lines). */
enum {
    HOLE_OPERAND0 = 0,
    HOLE_OPERAND1 = 1,
    HOLE_POSITION = 2,
    HOLE_CONTINUE = 3,
    HOLE_TARGET = 4,
    HOLE_EXIT = 5,
    HOLE_HELPER = 6,
    HOLE_CODE = 7,
    HOLE_DATA = 8,
    HOLE_OPERAND2 = 9,  /* (op sets' stencils) */
    HOLE_OPERAND3 = 10,
    HOLE_OPERAND0_X8 = 11, /* (the stack machine's locals: byte offsets) */
    HOLE_OPERAND1_X8 = 12,
};

/* The stack-caching table jit_cache_stack reads.  A cache state is one of
 * CACHE_STATES: how many slots (up to CACHE_DEPTH) are cached, and which of
 * them in the float registers (jit.codegen.stackcache numbers them; 0 is
 * the stack all in memory).  One row of int32s per op (the library's own
 * stencils, which come before their variants); in it, for each state in,
 * a block of CACHE_BLOCK values at CACHE_BLOCK * in: at CACHE_TO_MEMORY the
 * way out with the stack all in memory, and from CACHE_FIRST the
 * CACHE_CANDIDATES ways the choice tries otherwise (as many slots as the
 * op's body leaves, in the register files of the variants built), each as
 * three values: the state out, the variant (-1: not built) and its cost
 * (Stencil.cost).  At CACHE_ENTERS_IN_MEMORY, whether the op is always
 * entered with the whole stack in memory. */
enum {
    CACHE_DEPTH = 2,
    CACHE_STATES = 7,            /* 0; 1, 2 in integer registers; 1, 2 in float registers; 2 mixed, both ways */
    CACHE_BLOCK = 16,
    CACHE_CANDIDATES = 0,
    CACHE_TO_MEMORY = 1,
    CACHE_FIRST = 4,             /* up to 4 ways: 2 ** CACHE_DEPTH mixes of files */
    CACHE_ENTERS_IN_MEMORY = 112, /* CACHE_BLOCK * CACHE_STATES */
    CACHE_ROW = 128,
};

/* The architectures the C stitcher patches for (jit.targets: Target.arch). */
enum {
    ARCH_X86_64 = 0,
    ARCH_AARCH64 = 1,
};

/* How CALL packs its second operand (the CALL_* macros below). */
enum {
    CALL_FIELD_BITS = 16,
    CALL_NEED_SHIFT = 32,
};

/* Trampolines (a far jump through an absolute address) and data are laid
 * out in units of these many bytes. */
enum {
    TRAMPOLINE_SIZE = 16,
    DATA_ALIGN = 16,
};

/* GDB's JIT interface (the GDB manual, "JIT Compilation Interface"): each
 * piece of compiled code is described by an in-memory ELF object (built by
 * jit/runtime/gdbjit.py) in a list gdb reads when __jit_debug_register_code
 * is called.  The names and layout are GDB's. */
struct jit_code_entry {
    struct jit_code_entry *next_entry;
    struct jit_code_entry *prev_entry;
    const char *symfile_addr;
    uint64_t symfile_size;
};

struct jit_descriptor {
    uint32_t version;
    uint32_t action_flag; /* 0 nothing, 1 register, 2 unregister */
    struct jit_code_entry *relevant_entry;
    struct jit_code_entry *first_entry;
};
extern struct jit_descriptor __jit_debug_descriptor;

/* Link an entry into the list and tell gdb (runtime.c); unlink and tell. */
void jit_gdb_register(struct jit_code_entry *entry);
void jit_gdb_unregister(struct jit_code_entry *entry);

/* cdef-end */

_Static_assert(sizeof(((TargetPlan *)0)->trampoline) == TRAMPOLINE_SIZE, "TargetPlan.trampoline");

/* CALL's second operand packs the callee's frame shape (jit.lang.ir.call_info):
 * parameters in the low CALL_FIELD_BITS, extra locals in the next
 * CALL_FIELD_BITS, and from bit CALL_NEED_SHIFT the stack slots it needs. */
#define CALL_NPARAMS(info) ((info) & ((1 << CALL_FIELD_BITS) - 1))
#define CALL_NEXTRA(info) (((info) >> CALL_FIELD_BITS) & ((1 << CALL_FIELD_BITS) - 1))
#define CALL_NEED(info) ((int64_t)((uint64_t)(info) >> CALL_NEED_SHIFT))

/* tos0, tos1: the top two slots of the operand stack, for stencils entered
 * with them cached (template.c); mem, mem_size: the program's memory and its
 * size in slots (state->mem and state->mem_size, which never change during a
 * run), in registers from the shim on; reg0..reg2: locals kept in
 * registers (LOCAL_REGS), passed on untouched by every stencil but the
 * register ops; ftos0, ftos1: the same two slots as tos0 and tos1, for
 * stencils entered with them cached in float registers. */
typedef PRESERVE_NONE void (*jit_fn)(VMState *state, Slot *sp, Slot *fp, uint64_t tos0, uint64_t tos1, Slot *mem,
                                     uint64_t mem_size, uint64_t reg0, uint64_t reg1, uint64_t reg2, double ftos0,
                                     double ftos1);

#endif
