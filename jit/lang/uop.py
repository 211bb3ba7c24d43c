"""The .uop text format: parsing (with FILE:LINE:COL errors) and printing.

    # a comment (so is ; to the end of the line)
    .memory 100             slots of memory, zeroed at start
    .args 1                 integer arguments the program takes
    .func main locals=2     the first function is the entry
    loop:                   a label (local to its function)
        push_int 10         one instruction per line: mnemonic, then operand
        print_str "hi\\n"    strings take C escapes: \\n \\t \\\\ \\" \\xHH
    .func f params=1 locals=3 results=1

Operands: integers (decimal, 0x, 0b, '_' separators, 'c' characters),
floats (1.5, -2e-3, inf, -inf, nan), local and argument indices, labels,
function names, string literals.  `ret` takes none: it returns the
function's declared results.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..errors import Diagnostic, ProgramError
from .ir import BY_MNEMONIC, INVALID, OPS, Program, ProgramBuilder, bits_float

_IDENT = re.compile(r"[A-Za-z_$][\w$.]*")
_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|[0-9][0-9_]*)")
_FLOAT = re.compile(r"[-+]?(?:inf|nan|(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?)")
_CHAR = re.compile(r"'(\\x[0-9a-fA-F]{2}|\\.|[^\\'])'")
_ESCAPES = {"n": 10, "t": 9, "r": 13, "0": 0, "\\": 92, '"': 34, "'": 39}
_ATTR = re.compile(r"(params|locals|results)=(\d+)")


class _Line:
    """Splits one line into tokens, with their columns; strings stay whole."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, int]] = []
        self.error: tuple[int, str] | None = None
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c in " \t\r\f\v":
                i += 1
            elif c in "#;":
                break
            elif c == '"':
                j = i + 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                if j >= n:
                    self.error = (i + 1, "unterminated string literal")
                    return
                self.tokens.append((text[i : j + 1], i + 1))
                i = j + 1
            elif c == "'" and _CHAR.match(text, i):
                m = _CHAR.match(text, i)
                assert m is not None
                self.tokens.append((m.group(0), i + 1))
                i = m.end()
            else:
                j = i
                while j < n and text[j] not in ' \t\r\f\v#;"':
                    j += 1
                self.tokens.append((text[i:j], i + 1))
                i = j


def _unescape(body: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4]):
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise ValueError(f"unknown escape \\{nxt}")
    return bytes(out)


def _int_literal(tok: str) -> int | None:
    if _INT.fullmatch(tok):
        return int(tok.replace("_", ""), 0) if not re.fullmatch(r"[-+]?0[0-9_]+", tok) else int(tok.replace("_", ""))
    m = _CHAR.fullmatch(tok)
    if m:
        data = _unescape(m.group(1))
        return data[0] if len(data) == 1 else None
    return None


def _operand(kind: str, tok: str) -> object:
    """Turn an operand token into the value the builder takes; ValueError if it cannot."""
    if kind in ("LABEL", "FUNC"):
        if not _IDENT.fullmatch(tok):
            raise ValueError(f"expected a {'label' if kind == 'LABEL' else 'function'} name, got {tok!r}")
        return tok
    if kind == "STRING":
        if not (tok.startswith('"') and tok.endswith('"') and len(tok) >= 2):
            raise ValueError(f"expected a string literal, got {tok!r}")
        return _unescape(tok[1:-1])
    if kind == "FLOAT":
        as_int = _int_literal(tok) if not tok.startswith("'") else None
        if as_int is not None:
            return as_int
        if not _FLOAT.fullmatch(tok):
            raise ValueError(f"expected a float, got {tok!r}")
        value = float(tok)
        if math.isinf(value) and "inf" not in tok:
            raise ValueError(f"float literal {tok} out of range")
        return value
    integer = _int_literal(tok)
    if integer is None:
        raise ValueError(f"expected an integer, got {tok!r}")
    return integer


def _directive(b: ProgramBuilder, tokens: list[tuple[str, int]], line: int) -> None:
    word, col = tokens[0]
    rest = tokens[1:]
    if word == ".func":
        if not rest or not _IDENT.fullmatch(rest[0][0]):
            b.error(line, col, ".func needs a function name")
            return
        name, attrs = rest[0][0], {"params": 0, "locals": -1, "results": 0}  # locals -1: as many as params
        for tok, tcol in rest[1:]:
            m = _ATTR.fullmatch(tok)
            if not m:
                b.error(line, tcol, f"unknown .func attribute {tok!r} (params=N, locals=N, results=N)")
                continue
            attrs[m.group(1)] = int(m.group(2))
        nlocals = None if attrs["locals"] < 0 else attrs["locals"]
        b.func(name, attrs["params"], nlocals, attrs["results"], line, col)
        return
    if word in (".memory", ".args"):
        if len(rest) != 1 or _int_literal(rest[0][0]) is None:
            b.error(line, col, f"{word} needs one integer")
            return
        value = _int_literal(rest[0][0])
        assert value is not None
        (b.set_memory if word == ".memory" else b.set_args)(value, line, rest[0][1])
        return
    b.error(line, col, f"unknown directive {word!r} (.func, .memory, .args)")


def parse(text: str, filename: str = "<string>") -> Program:
    """Parse and verify a program; every problem found is in the ProgramError."""
    b = ProgramBuilder(filename)
    seen: set[str] = set()
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = _Line(raw)
        if line.error:
            b.error(lineno, line.error[0], line.error[1])
            continue
        tokens = line.tokens
        while tokens and tokens[0][0].endswith(":") and not tokens[0][0].startswith(('"', "'")):
            name, col = tokens[0]
            if not _IDENT.fullmatch(name[:-1]):
                b.error(lineno, col, f"bad label name {name[:-1]!r}")
            else:
                b.label(name[:-1], lineno, col)
            tokens = tokens[1:]
        if not tokens:
            continue
        word, col = tokens[0]
        if word.startswith("."):
            if word in (".memory", ".args") and word in seen:
                b.error(lineno, col, f"{word} is declared twice")
            seen.add(word)
            _directive(b, tokens, lineno)
            continue
        op = BY_MNEMONIC.get(word)
        if op is None:
            b.error(lineno, col, f"unknown op {word!r}")
            continue
        # A mistake in an operand is reported here, and the instruction still
        # counts (with an operand marked invalid), so no error follows from it.
        operand: object = None
        if len(tokens) > 2:
            b.error(lineno, tokens[2][1], f"unexpected {tokens[2][0]!r} after the operand")
            operand = INVALID
        elif len(tokens) == 2:
            tok, tcol = tokens[1]
            if op.operand in ("NONE", "COUNT"):
                b.error(lineno, tcol, f"{word} takes no operand")
            else:
                try:
                    operand = _operand(op.operand, tok)
                except ValueError as e:
                    b.error(lineno, tcol, f"{word}: {e}")
                    operand = INVALID
        b.emit(word, operand, lineno, col)
    return b.build()


def parse_file(path: str | Path) -> Program:
    """Read and parse a .uop file; unreadable or non-UTF-8 files are ProgramErrors too."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ProgramError([Diagnostic(name, 0, 0, f"cannot read: {e.strerror}")]) from e
    return parse_bytes(data, name)


def parse_bytes(data: bytes, filename: str) -> Program:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ProgramError([Diagnostic(filename, line, col, "not UTF-8 text")]) from None
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise ProgramError([Diagnostic(filename, line, 1, "NUL byte in program text")])
    return parse(text, filename)


def _quote(data: bytes) -> str:
    out = []
    for byte in data:
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\n\t":
            out.append("\\n" if ch == "\n" else "\\t")
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def format_program(program: Program) -> str:
    """Print a program as .uop text that parses back to the same program."""
    targets = {ins.a for ins in program.code if ins.info.operand == "LABEL"}
    starts = {f.start: f for f in program.functions}
    out = []
    if program.memory:
        out.append(f".memory {program.memory}")
    if program.nargs:
        out.append(f".args {program.nargs}")
    for pc, ins in enumerate(program.code):
        if pc in starts:
            f = starts[pc]
            out.append(f".func {f.name} params={f.params} locals={f.locals} results={f.results}")
        if pc in targets:
            out.append(f"L{pc}:")
        op = OPS[ins.op]
        kind = op.operand
        if kind in ("NONE", "COUNT"):
            text = ""
        elif kind == "LABEL":
            text = f"L{ins.a}"
        elif kind == "FUNC":
            text = starts[ins.a].name
        elif kind == "FLOAT":
            text = repr(bits_float(ins.a))
        elif kind == "STRING":
            text = _quote(program.strings[ins.a])
        else:
            text = str(ins.a)
        out.append(f"    {op.mnemonic} {text}".rstrip())
    return "\n".join(out) + "\n"
