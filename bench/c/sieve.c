/* bench/programs/sieve.uop: the sieve of Eratosthenes over the VM's memory
 * (1,000,000 slots, cleared before the run, as the VM's are). */
#include "anchor.h"

#define SLOTS 1000000
static int64_t *memory;

static void
setup(int64_t arg)
{
    (void)arg;
    free(memory);
    memory = calloc(SLOTS, sizeof *memory);
}

static void
run(int64_t arg)
{
    int64_t n = arg, count = 0;
    for (int64_t i = 2; i < n; i++) {
        if (memory[i] != 0) {
            continue;
        }
        count = count + 1;
        for (int64_t j = i * i; j < n; j += i) {
            memory[j] = 1;
        }
    }
    print_int(count);
    print_str("\n");
}
