/* Opcode numbers, in op table order. */
#ifndef JIT_OPCODES_H
#define JIT_OPCODES_H

enum {
#define OP(name, mnemonic, pops, pushes, operand, flags) OP_##name,
#include "ops.def"
#undef OP
    OP__COUNT
};

#endif
