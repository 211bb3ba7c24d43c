/* bench/programs/branchy.uop: a loop whose branches change direction. */
#include "anchor.h"

static void
setup(int64_t arg)
{
    (void)arg;
}

static void
run(int64_t arg)
{
    int64_t n = arg, half = n / 2, acc = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i < half) {
            acc = acc + i % 7;
        } else {
            acc = acc - i % 5;
        }
        if (i % 3 == 0) {
            acc = acc ^ 3;
        }
    }
    print_int(acc);
    print_str("\n");
}
