/* The helpers, for the host: output into a buffer that grows as needed.
 * Each returns 0, or nonzero when the buffer cannot grow. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static int
reserve(VMState *state, int64_t extra)
{
    int64_t want = state->out_len + extra;
    if (want <= state->out_cap) {
        return 0;
    }
    int64_t cap = state->out_cap ? state->out_cap : 4096;
    while (cap < want) {
        cap *= 2;
    }
    char *grown = realloc(state->out, (size_t)cap);
    if (grown == NULL) {
        return -1;
    }
    state->out = grown;
    state->out_cap = cap;
    return 0;
}

static int64_t
append(VMState *state, const char *data, int64_t n)
{
    if (reserve(state, n)) {
        return -1;
    }
    memcpy(state->out + state->out_len, data, (size_t)n);
    state->out_len += n;
    return 0;
}

int64_t
print_int(VMState *state, int64_t value)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)value);
    return append(state, buf, n);
}

/* printf's %.*f, except that every NaN prints as "nan": the sign of a NaN
 * differs between machines (x86's default NaN is negative). */
int64_t
print_float(VMState *state, double value, int64_t precision)
{
    if (value != value) {
        return append(state, "nan", 3);
    }
    int n = snprintf(NULL, 0, "%.*f", (int)precision, value);
    if (n < 0 || reserve(state, n + 1)) {
        return -1;
    }
    snprintf(state->out + state->out_len, (size_t)n + 1, "%.*f", (int)precision, value);
    state->out_len += n;
    return 0;
}

int64_t
print_byte(VMState *state, int64_t value)
{
    char c = (char)(value & 0xff);
    return append(state, &c, 1);
}

int64_t
print_str(VMState *state, int64_t index)
{
    return append(state, state->strings[index], state->string_lens[index]);
}

void
vm_free_output(VMState *state)
{
    free(state->out);
    state->out = NULL;
    state->out_len = state->out_cap = 0;
}
