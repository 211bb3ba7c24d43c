/* bench/programs/fannkuch.uop: fannkuch-redux.  Memory as in the .uop:
 * perm at 0, perm1 at 16, count at 32. */
#include "anchor.h"

static int64_t memory[48];

static void
setup(int64_t arg)
{
    (void)arg;
    memset(memory, 0, sizeof memory);
}

static void
run(int64_t arg)
{
    int64_t n = arg, r, max_flips = 0, permutations = 0, checksum = 0;
    int64_t *perm = memory, *perm1 = memory + 16, *count = memory + 32;
    for (int64_t i = 0; i < n; i++) {
        perm1[i] = i;
    }
    r = n;
    for (;;) {
        while (r != 1) {
            count[r - 1] = r;
            r = r - 1;
        }
        for (int64_t i = 0; i < n; i++) {
            perm[i] = perm1[i];
        }
        int64_t flips = 0, k;
        while ((k = perm[0]) != 0) {
            int64_t k2 = (k + 1) >> 1;
            for (int64_t i = 0; i < k2; i++) {
                int64_t t = perm[i];
                perm[i] = perm[k - i];
                perm[k - i] = t;
            }
            flips = flips + 1;
        }
        if (flips > max_flips) {
            max_flips = flips;
        }
        checksum = (permutations & 1) ? checksum - flips : checksum + flips;
        for (;;) {
            if (r == n) {
                print_int(checksum);
                print_str("\nPfannkuchen(");
                print_int(n);
                print_str(") = ");
                print_int(max_flips);
                print_str("\n");
                return;
            }
            int64_t perm0 = perm1[0];
            for (int64_t i = 0; i < r; i++) {
                perm1[i] = perm1[i + 1];
            }
            perm1[r] = perm0;
            count[r] = count[r] - 1;
            if (count[r] > 0) {
                break;
            }
            r = r + 1;
        }
        permutations = permutations + 1;
    }
}
