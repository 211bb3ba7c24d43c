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


class Diagnostic:
    """One problem in a program, at FILE:LINE:COL."""

    __slots__ = ("col", "filename", "line", "message")

    def __init__(self, filename: str, line: int, col: int, message: str) -> None:
        self.filename, self.line, self.col, self.message = filename, line, col, message

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.col}: {self.message}"

    def __repr__(self) -> str:
        return f"Diagnostic({str(self)!r})"


class ProgramError(JitError):
    """A program that cannot be parsed or verified; carries every problem found."""

    MAX_SHOWN = 20

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.line, d.col))
        shown = [str(d) for d in self.diagnostics[: self.MAX_SHOWN]]
        if len(self.diagnostics) > self.MAX_SHOWN:
            shown.append(f"... and {len(self.diagnostics) - self.MAX_SHOWN} more")
        super().__init__("\n".join(shown))
