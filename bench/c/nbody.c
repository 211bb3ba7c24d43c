/* bench/programs/nbody.uop: the Jovian planets, in the operation order of
 * the Benchmarks Game's C program.  Memory as in the .uop: body k at
 * slot 8k (x y z vx vy vz mass). */
#include "anchor.h"
#include <math.h>

static double memory[40];

static const double initial[5][7] = {
    {0, 0, 0, 0.0, 0.0, 0.0, 39.47841760435743},
    {4.841431442464721, -1.1603200440274284, -0.10362204447112311, 0.606326392995832, 2.81198684491626,
     -0.02521836165988763, 0.03769367487038949},
    {8.34336671824458, 4.124798564124305, -0.4035234171143214, -1.0107743461787924, 1.8256623712304119,
     0.008415761376584154, 0.011286326131968767},
    {12.894369562139131, -15.111151401698631, -0.22330757889265573, 1.0827910064415354, 0.8687130181696082,
     -0.010832637401363636, 0.0017237240570597112},
    {15.379697114850917, -25.919314609987964, 0.17925877295037118, 0.979090732243898, 0.5946989986476762,
     -0.034755955504078104, 0.0020336868699246304},
};

static void
advance(void)
{
    for (int i = 0; i < 5; i++) {
        double *b = &memory[8 * i];
        for (int j = i + 1; j < 5; j++) {
            double *b2 = &memory[8 * j];
            double dx = b[0] - b2[0], dy = b[1] - b2[1], dz = b[2] - b2[2];
            double distance = sqrt(dx * dx + dy * dy + dz * dz);
            double mag = 0.01 / (distance * distance * distance);
            b[3] -= dx * b2[6] * mag;
            b[4] -= dy * b2[6] * mag;
            b[5] -= dz * b2[6] * mag;
            b2[3] += dx * b[6] * mag;
            b2[4] += dy * b[6] * mag;
            b2[5] += dz * b[6] * mag;
        }
    }
    for (int i = 0; i < 5; i++) {
        double *b = &memory[8 * i];
        b[0] += 0.01 * b[3];
        b[1] += 0.01 * b[4];
        b[2] += 0.01 * b[5];
    }
}

static double
energy(void)
{
    double e = 0.0;
    for (int i = 0; i < 5; i++) {
        double *b = &memory[8 * i];
        e += 0.5 * b[6] * (b[3] * b[3] + b[4] * b[4] + b[5] * b[5]);
        for (int j = i + 1; j < 5; j++) {
            double *b2 = &memory[8 * j];
            double dx = b[0] - b2[0], dy = b[1] - b2[1], dz = b[2] - b2[2];
            e -= (b[6] * b2[6]) / sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

static void
offset_momentum(void)
{
    double px = 0.0, py = 0.0, pz = 0.0;
    for (int i = 0; i < 5; i++) {
        px += memory[8 * i + 3] * memory[8 * i + 6];
        py += memory[8 * i + 4] * memory[8 * i + 6];
        pz += memory[8 * i + 5] * memory[8 * i + 6];
    }
    memory[3] = -px / 39.47841760435743;
    memory[4] = -py / 39.47841760435743;
    memory[5] = -pz / 39.47841760435743;
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
    for (int i = 0; i < 5; i++) {
        for (int k = 0; k < 7; k++) {
            memory[8 * i + k] = initial[i][k];
        }
    }
    offset_momentum();
    print_float(energy(), 9);
    print_str("\n");
    for (int64_t n = arg; n != 0; n--) {
        advance();
    }
    print_float(energy(), 9);
    print_str("\n");
}
