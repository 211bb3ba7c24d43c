/* Shell sort (Knuth's gaps) of the input bytes in place; returns a digest
 * of the sorted buffer. */
typedef unsigned long long u64;

u64 prog(unsigned char *mem, u64 len)
{
    u64 gap = 1;
    while (gap < len / 3)
        gap = 3 * gap + 1;
    for (; gap > 0; gap /= 3) {
        for (u64 i = gap; i < len; i++) {
            unsigned char v = mem[i];
            u64 j = i;
            while (j >= gap && mem[j - gap] > v) {
                mem[j] = mem[j - gap];
                j -= gap;
            }
            mem[j] = v;
        }
    }
    u64 digest = 0;
    for (u64 i = 0; i < len; i++)
        digest = digest * 31 + mem[i];
    return digest;
}
