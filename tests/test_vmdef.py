"""jit.vmdef reads stencils/vm.h as the C compiler does."""

from __future__ import annotations

from jit import vmdef
from jit.build.hostlib import hostlib
from jit.build.stencils import HoleKind


def test_struct_layouts_match_the_compilers():
    ffi, _ = hostlib()
    for struct in ("VMState", "Frame"):
        for field in vmdef.fields(struct):
            assert vmdef.offset(struct, field) == ffi.offsetof(struct, field), (struct, field)
        assert vmdef.size(struct) == ffi.sizeof(struct)


def test_every_constant_matches_the_compilers():
    _, lib = hostlib()
    constants = vmdef.constants()
    assert {"VM_HALTED", "VM_ERR_DIV_ZERO", "HOLE_DATA", "CACHE_ROW", "ARCH_AARCH64"} <= set(constants)
    for name, value in constants.items():
        assert getattr(lib, name) == value, name
    assert {f"HOLE_{k.name}" for k in HoleKind} <= set(constants)  # every hole kind has its C number
