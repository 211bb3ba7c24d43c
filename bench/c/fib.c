/* bench/programs/fib.uop: recursive Fibonacci. */
#include "anchor.h"

static int64_t
fib(int64_t n)
{
    if (n < 2) {
        return n;
    }
    return fib(n - 1) + fib(n - 2);
}

static void
setup(int64_t arg)
{
    (void)arg;
}

static void
run(int64_t arg)
{
    print_int(fib(arg));
    print_str("\n");
}
