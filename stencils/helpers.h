/* Helpers: the few things an op cannot do inline (formatted output).
 * They use the normal C ABI.  Stencils reach them through _JIT_HELPER_<name>
 * holes; the interpreters call them directly; the emulator serves them from
 * Python.  HELPERS(X) lists them once for all three.
 */
#ifndef JIT_HELPERS_H
#define JIT_HELPERS_H

#include "vm.h"

#define HELPERS(X)          \
    X(print_int)            \
    X(print_float)          \
    X(print_byte)           \
    X(print_str)

int64_t print_int(VMState *state, int64_t value);
int64_t print_float(VMState *state, double value, int64_t precision);
int64_t print_byte(VMState *state, int64_t value);
int64_t print_str(VMState *state, int64_t index);

#endif
