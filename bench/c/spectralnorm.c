/* bench/programs/spectralnorm.uop: the spectral norm of an infinite matrix.
 * Memory as in the .uop: u at 0, v at N, the temporary vector at 2N. */
#include "anchor.h"
#include <math.h>

static double memory[30000];

static double
eval_A(int64_t i, int64_t j)
{
    return 1.0 / (double)((i + j) * (i + j + 1) / 2 + i + 1);
}

/* dst = A src, or At src when transposed. */
static void
times(int64_t src, int64_t dst, int transposed, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double sum = 0.0;
        for (int64_t j = 0; j < n; j++) {
            double a = transposed ? eval_A(j, i) : eval_A(i, j);
            sum = sum + a * memory[src + j];
        }
        memory[dst + i] = sum;
    }
}

static void
times_AtA(int64_t src, int64_t dst, int64_t n)
{
    times(src, 2 * n, 0, n);
    times(2 * n, dst, 1, n);
}

static void
setup(int64_t arg)
{
    (void)arg;
    memset(memory, 0, sizeof memory);
}

static void
run(int64_t arg)
{
    int64_t n = arg;
    for (int64_t i = 0; i < n; i++) {
        memory[i] = 1.0;
    }
    for (int k = 0; k < 10; k++) {
        times_AtA(0, n, n);
        times_AtA(n, 0, n);
    }
    double vBv = 0.0, vv = 0.0;
    for (int64_t i = 0; i < n; i++) {
        vBv = vBv + memory[i] * memory[n + i];
        vv = vv + memory[n + i] * memory[n + i];
    }
    print_float(sqrt(vBv / vv), 9);
    print_str("\n");
}
