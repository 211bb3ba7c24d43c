/* bench/programs/mandelbrot.uop: a binary PBM of the Mandelbrot set. */
#include "anchor.h"

static void
setup(int64_t arg)
{
    (void)arg;
}

static void
run(int64_t arg)
{
    int64_t w = arg, byte = 0, bits = 0;
    print_str("P4\n");
    print_int(w);
    print_str(" ");
    print_int(w);
    print_str("\n");
    for (int64_t y = 0; y < w; y++) {
        for (int64_t x = 0; x < w; x++) {
            double Zr = 0.0, Zi = 0.0, Tr = 0.0, Ti = 0.0;
            double Cr = 2.0 * (double)x / (double)w - 1.5;
            double Ci = 2.0 * (double)y / (double)w - 1.0;
            for (int64_t i = 0; i < 50 && Tr + Ti <= 4.0; i++) {
                Zi = 2.0 * Zr * Zi + Ci;
                Zr = Tr - Ti + Cr;
                Tr = Zr * Zr;
                Ti = Zi * Zi;
            }
            byte = byte << 1;
            if (Tr + Ti <= 4.0) {
                byte = byte | 1;
            }
            bits = bits + 1;
            if (bits == 8) {
                print_byte(byte);
                byte = 0;
                bits = 0;
            } else if (x == w - 1) {
                print_byte(byte << (8 - w % 8));
                byte = 0;
                bits = 0;
            }
        }
    }
}
