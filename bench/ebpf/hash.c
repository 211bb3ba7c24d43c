/* A 64-bit hash of the input, eight bytes at a time (a murmur-style mix). */
typedef unsigned long long u64;

static u64 mix(u64 h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

u64 prog(const unsigned char *mem, u64 len)
{
    u64 h = 0x9e3779b97f4a7c15ULL ^ len;
    u64 i = 0;
    for (; i + 8 <= len; i += 8) {
        u64 w = 0;
        for (int k = 7; k >= 0; k--)
            w = w << 8 | mem[i + k];
        h = mix(h ^ w) * 5 + 0x52dce729;
    }
    for (; i < len; i++)
        h = (h ^ mem[i]) * 0x100000001b3ULL;
    return mix(h);
}
