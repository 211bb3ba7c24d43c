/* Walk a buffer of length-prefixed Ethernet frames; count IPv4 TCP SYNs to
 * port 80 and UDP datagrams to port 53, checking every header's bounds. */
typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

static u16 be16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }

u64 prog(const u8 *mem, u64 len)
{
    u64 syn80 = 0, dns = 0, bad = 0;
    u64 at = 0;
    while (at + 2 <= len) {
        u64 size = be16(mem + at);
        const u8 *frame = mem + at + 2;
        at += 2 + size;
        if (at > len || size < 14 + 20) {
            bad++;
            continue;
        }
        if (be16(frame + 12) != 0x0800)
            continue;
        const u8 *ip = frame + 14;
        u64 ihl = (u64)(ip[0] & 0xf) * 4;
        if ((ip[0] >> 4) != 4 || ihl < 20 || 14 + ihl + 8 > size) {
            bad++;
            continue;
        }
        const u8 *l4 = ip + ihl;
        if (ip[9] == 6 && 14 + ihl + 20 <= size) {
            if (be16(l4 + 2) == 80 && (l4[13] & 0x12) == 0x02)
                syn80++;
        } else if (ip[9] == 17 && be16(l4 + 2) == 53) {
            dns++;
        }
    }
    return syn80 << 32 | dns << 16 | bad;
}
