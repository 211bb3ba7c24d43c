/* bench/programs/count.uop: a plain counting loop. */
#include "anchor.h"

static void
setup(int64_t arg)
{
    (void)arg;
}

static void
run(int64_t arg)
{
    int64_t remaining = arg, count = 0;
    while (remaining != 0) {
        count = count + 1;
        remaining = remaining - 1;
    }
    print_int(count);
    print_str("\n");
}
