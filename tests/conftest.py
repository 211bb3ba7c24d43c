"""Shared fixtures: the stencil libraries, built once (or taken from the cache)."""

from __future__ import annotations

import pytest

from jit.build.library import load_library
from jit.build.stencils import StencilLibrary
from jit.build.toolchain import find_clang
from jit.targets import TARGETS


@pytest.fixture(scope="session")
def clang():
    return find_clang()


@pytest.fixture(scope="session", params=sorted(TARGETS))
def target(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def libraries() -> dict[str, StencilLibrary]:
    return {t: load_library(t) for t in TARGETS}


@pytest.fixture(scope="session")
def library(libraries, target) -> StencilLibrary:
    return libraries[target]


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-examples", type=int, default=30, help="programs the differential fuzz test draws (default 30)"
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: differential fuzzing across every engine (pytest -m fuzz)")
