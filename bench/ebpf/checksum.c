/* The Internet checksum (RFC 1071) of the whole input, as 16-bit words. */
typedef unsigned long long u64;

u64 prog(const unsigned char *mem, u64 len)
{
    u64 sum = 0;
    u64 i = 0;
    for (; i + 1 < len; i += 2)
        sum += (u64)mem[i] << 8 | mem[i + 1];
    if (i < len)
        sum += (u64)mem[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return ~sum & 0xffff;
}
