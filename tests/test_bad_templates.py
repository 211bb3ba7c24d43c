"""A template that needs what a stencil cannot have fails with a message naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jit.build.library import Job, build_stencil
from jit.errors import StencilBuildError
from jit.targets import get_target

BAD = sorted((Path(__file__).parent / "bad_templates").glob("*.c"))


def expectation(path: Path) -> str:
    m = re.search(r"/\* expect: (.*?) \*/", path.read_text())
    assert m, f"{path} has no expect: comment"
    return m.group(1)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_template_is_refused(clang, target, path):
    with pytest.raises(StencilBuildError) as info:
        build_stencil(clang, get_target(target), Job(path.stem, path))
    message = str(info.value)
    assert message.startswith(f"stencil stack:{path.stem} for {target}: ")  # op set and op
    assert expectation(path) in message


def test_unsupported_relocations_are_named(clang, target):
    path = Path(__file__).parent / "bad_templates" / "unsupported_reloc.c"
    with pytest.raises(StencilBuildError) as info:
        build_stencil(clang, get_target(target), Job(path.stem, path))
    expected = "R_X86_64_GOTTPOFF (type 22)" if target.startswith("x86") else "R_AARCH64_PREL16 (type 262)"
    assert f"unsupported relocation {expected} at .text+" in str(info.value)


def test_garbage_object_is_a_build_error():
    from jit.build.process import process_object

    with pytest.raises(StencilBuildError, match="stencil X for x86_64-linux: malformed ELF object"):
        process_object(b"\x7fELF" + bytes(60), "X", get_target("x86_64-linux"))
    with pytest.raises(StencilBuildError, match="object is for EM_X86_64, expected EM_AARCH64"):
        blob = Path(__file__).parent / "templates" / "add_operand.c"
        from jit.build.library import compile_object
        from jit.build.toolchain import find_clang

        obj = compile_object(find_clang(), get_target("x86_64-linux"), Job("X", blob))
        process_object(obj, "X", get_target("aarch64-linux"))
