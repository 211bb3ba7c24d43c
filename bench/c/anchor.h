/* The native C anchors of the benchmark: each bench/c/NAME.c is a plain C
 * version of bench/programs/NAME.uop (the same algorithm, the same
 * operation order, the same output), compiled by the same clang at -O0 and
 * at -O2 into a shared library that jit.anchors loads in-process.
 *
 * A program defines setup(arg), which allocates and clears what the VM
 * would have ready before it runs (its memory array), and run(arg), the
 * part that is timed.  Output goes to a buffer, as the VM's helpers do,
 * with the same formats (every NaN prints as "nan").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *out_buf;
static int64_t out_len, out_cap;
static int out_failed;

static inline void
out_bytes(const char *p, int64_t n)
{
    if (out_len + n > out_cap) {
        int64_t cap = out_cap ? out_cap : 256;
        while (cap < out_len + n) {
            cap *= 2;
        }
        char *grown = realloc(out_buf, (size_t)cap);
        if (!grown) {
            out_failed = 1;
            return;
        }
        out_buf = grown;
        out_cap = cap;
    }
    memcpy(out_buf + out_len, p, (size_t)n);
    out_len += n;
}

static inline void
print_int(int64_t v)
{
    char b[32];
    out_bytes(b, snprintf(b, sizeof b, "%lld", (long long)v));
}

static inline void
print_float(double v, int precision)
{
    if (v != v) {
        out_bytes("nan", 3);
        return;
    }
    char b[512];
    int n = snprintf(b, sizeof b, "%.*f", precision, v);
    out_bytes(b, n < (int)sizeof b ? n : (int)sizeof b - 1);
}

static inline void
print_byte(int64_t v)
{
    char c = (char)(v & 0xff);
    out_bytes(&c, 1);
}

static inline void
print_str(const char *s)
{
    out_bytes(s, (int64_t)strlen(s));
}

static void setup(int64_t arg);
static void run(int64_t arg);

/* What jit.anchors calls: set up (not timed), run (timed), read the output. */
void
anchor_setup(int64_t arg)
{
    out_len = 0;
    out_failed = 0;
    setup(arg);
}

void
anchor_run(int64_t arg)
{
    run(arg);
}

const char *
anchor_output(int64_t *len)
{
    *len = out_failed ? -1 : out_len;
    return out_buf;
}
