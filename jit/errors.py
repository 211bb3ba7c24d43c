"""The project's exception types: every error a user can cause is one of these."""

from __future__ import annotations


class JitError(Exception):
    """Base class: the CLI turns these into one-line messages, never tracebacks."""


class ToolchainError(JitError):
    """Clang is missing, too old, or failed to run."""


class StencilBuildError(JitError):
    """A template could not be turned into a stencil.

    The message always names the op and the target, so a failure in a build
    of a hundred objects points straight at the one to look at.
    """

    def __init__(self, op: str, target: str, what: str) -> None:
        super().__init__(f"stencil {op} for {target}: {what}")
        self.op = op
        self.target = target
        self.what = what
