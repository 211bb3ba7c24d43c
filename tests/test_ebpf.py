"""eBPF (RFC 9669) as an op set: every engine and target against known results.

The .data files in tests/ebpf are this project's own, in the conformance
suite's format; each result was worked out by hand from the RFC (the
comments say how).  The C programs are compiled with clang -target bpf and
checked against the same computation done in Python.
"""

from __future__ import annotations

import functools
import random
import re
import subprocess
import zlib
from pathlib import Path

import pytest

from jit.opsets import load
from jit.opsets.engines import Engine, run
from jit.opsets.model import Rejected
from jit.opsets.validate import validate
from jit.tools.cli import main

HERE = Path(__file__).parent / "ebpf"
DATA = sorted(HERE.glob("*.data"))
ENGINES = [
    ["--engine", "py"],
    ["--engine", "interp"],
    ["--engine", "jit"],
    ["--engine", "jit", "--target", "aarch64-linux"],
    ["--engine", "jit", "--target", "x86_64-linux", "--emulate"],
]


@pytest.fixture(scope="module")
def ebpf():
    return load("ebpf")


def _sections(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("--"):
            current = line[2:].strip()
            out[current] = []
        elif current is not None and line.strip():
            out[current].append(line.strip())
    return out


# The Python reference would take minutes to spend the loop budget (10,000,000
# trips) of endless-loop.data; test_the_reference_spends_the_loop_budget checks it with a small one.
SLOW_ON_PY = {"endless-loop"}
CASES = [(p, e) for p in DATA for e in ENGINES if not (p.stem in SLOW_ON_PY and e == ["--engine", "py"])]


@pytest.mark.parametrize(
    "path, engine", CASES, ids=[f"{p.stem}-{'-'.join(a.lstrip('-') for a in e[1:])}" for p, e in CASES]
)
def test_data_files(path, engine, capsys):
    sections = _sections(path)
    status = main(["run", "--opset", "ebpf", str(path), *engine])
    out, err = capsys.readouterr()
    if "error" in sections:
        assert status == 1, out
        assert "runtime error" in err or "error:" in err
        for line in sections["error"]:
            assert line in err
    else:
        assert status == 0, err
        assert int(out.strip(), 16) == int(sections["result"][0], 16)


def test_wrong_result_exits_1(tmp_path, capsys):
    program = tmp_path / "p.data"
    program.write_text("-- asm\nmov r0, 2\nexit\n-- result\n0x3\n")
    assert main(["run", "--opset", "ebpf", str(program)]) == 1
    out, err = capsys.readouterr()
    assert out.strip() == "0x2"
    assert "expects 0x3" in err


def test_expected_error_that_does_not_happen_exits_1(tmp_path, capsys):
    program = tmp_path / "p.data"
    program.write_text("-- asm\nmov r0, 2\nexit\n-- error\n")
    assert main(["run", "--opset", "ebpf", str(program)]) == 1
    assert "expected a runtime error" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, status, message",
    [
        ("-- asm\nmov r0, 1\nfrob r1\nexit\n", 2, ":3:1: unknown instruction 'frob'"),
        ("-- asm\nmov r0, [r1]\nexit\n", 2, ":2:1:"),
        ("-- asm\nja nowhere\nexit\n", 2, "no label 'nowhere'"),
        ("-- raw\n0x00000000000000ff\n", 1, "unknown opcode 0xff"),
        ("-- asm\nmov r11, 1\nexit\n", 1, "r11 does not exist"),
        ("-- asm\nja +5\nexit\n", 1, "outside the program"),
        ("-- raw\n0x0000000100000018\n", 1, "lddw needs a second slot"),
        ("-- asm\nmov r0, 1\nja +1\nlddw r0, 5\nexit\n", 1, "into the middle of a lddw"),
        ("-- asm\nmov r0, 1\nexit\n-- result\nzzz\n", 2, "is not a number"),
        ("-- mem\n00\n", 2, "needs an `-- asm` or a `-- raw` section"),
    ],
)
def test_bad_programs(tmp_path, capsys, text, status, message):
    program = tmp_path / "bad.data"
    program.write_text(text)
    for engine in ("py", "interp", "jit"):
        assert main(["run", "--opset", "ebpf", str(program), "--engine", engine]) == status
        err = capsys.readouterr().err
        assert message in err
        assert "Traceback" not in err


def test_raw_words_win_over_assembly(tmp_path, capsys):
    """As in the suite's parser: a file may keep its assembly beside the words that are run."""
    program = tmp_path / "both.data"
    program.write_text("-- asm\nmov r0, 1\nexit\n-- raw\n0x00000002000000b7\n0x0000000000000095\n-- result\n0x2\n")
    assert main(["run", "--opset", "ebpf", str(program), "--engine", "interp"]) == 0
    assert capsys.readouterr().out.strip() == "0x2"
    program.write_text("-- asm\nmov r0, 1\nexit\n-- raw\n# none\n-- result\n0x1\n")
    assert main(["run", "--opset", "ebpf", str(program), "--engine", "interp"]) == 0


def test_bad_usage(tmp_path, capsys):
    program = tmp_path / "p.data"
    program.write_text("-- asm\nexit\n")
    assert main(["run", "--opset", "ebpf", str(program), "--engine", "switch"]) == 2
    assert main(["run", "--opset", "ebpf", str(program), "7"]) == 2
    assert main(["run", "--opset", "nonesuch", str(program)]) == 2
    assert "not an op set" in capsys.readouterr().err
    assert main(["run", "--opset", "ebpf", str(tmp_path / "missing.data")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_every_op_on_every_engine_and_target(ebpf):
    """Each op's cases on the C interpreter and both targets' stencils agree with the reference."""
    ran, bad = validate(ebpf, seed=1)
    assert ran >= 6 * len(ebpf.ops) * 3
    assert not bad, "\n".join(map(str, bad[:10]))


def test_cases_reach_errors_and_both_branches(ebpf):
    """The per-op cases are not vacuous: memory ops fail out of bounds, jumps go both ways."""
    mod = ebpf.module
    rng = random.Random(0)
    errors = {mod.interpret(p).error is not None for p in mod.cases("LDXW", rng)}
    assert errors == {True, False}
    values = {mod.interpret(p).value for p in mod.cases("JEQ64_K", rng) + mod.cases("JSGT32_X", rng)}
    assert 1234 in values and len(values) > 1


def test_reference_is_independent_of_the_bodies(ebpf):
    """The Python semantics (reference.py and what it imports) read nothing of
    bodies.h or semantics.h (so agreement means something)."""
    for name in ("reference.py", "isa.py", "state.py"):
        source = re.sub(r'"""[\s\S]*?"""', "", (Path(ebpf.root) / name).read_text())
        assert "bodies.h" not in source and "semantics.h" not in source, name


# -- ELF objects from clang -target bpf --------------------------------------------------------


def _crc_table() -> list[int]:
    """CRC-32's table (the reflected 0xEDB88320 polynomial), for the C program to carry as data."""
    out = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = 0xEDB88320 ^ (c >> 1) if c & 1 else c >> 1
        out.append(c)
    return out


CRC_TABLE = _crc_table()

C_PROGRAMS = {
    "fold": (
        """
        static unsigned long long step(unsigned long long h, unsigned char b) { return (h ^ b) * 0x100000001b3ULL; }
        __attribute__((noinline)) static unsigned long long finish(unsigned long long h) { return h ^ (h >> 29); }
        unsigned long long prog(unsigned char *mem, unsigned long long len) {
            unsigned long long h = 0xcbf29ce484222325ULL;
            for (unsigned long long i = 0; i < len; i++) h = step(h, mem[i]);
            return finish(h);
        }
        """,
        lambda data: (lambda h: h ^ (h >> 29))(_fnv(data)),
    ),
    "sort": (
        """
        unsigned long long prog(unsigned char *mem, unsigned long long len) {
            for (unsigned long long i = 1; i < len; i++) {
                unsigned char v = mem[i];
                long long j = (long long)i - 1;
                while (j >= 0 && mem[j] > v) { mem[j + 1] = mem[j]; j--; }
                mem[j + 1] = v;
            }
            unsigned long long out = 0;
            for (unsigned long long i = 0; i < len && i < 8; i++) out = out << 8 | mem[i];
            return out;
        }
        """,
        lambda data: int.from_bytes(bytes(sorted(data))[:8], "big"),
    ),
    "signed": (
        """
        long long prog(unsigned char *mem, unsigned long long len) {
            long long acc = 0;
            for (unsigned long long i = 0; i + 1 < len; i += 2) {
                signed char a = (signed char)mem[i];
                int b = mem[i + 1] ? mem[i + 1] : 1;
                acc += (long long)a * 1000 / b - (a % 7);
            }
            return acc;
        }
        """,
        lambda data: _signed_sum(data),
    ),
    # A global helper: the program is the global function no other one calls.
    "global-helper": (
        """
        __attribute__((noinline)) unsigned long long mix(unsigned long long h, unsigned char b) { return (h ^ b) * 31; }
        unsigned long long prog(unsigned char *mem, unsigned long long len) {
            unsigned long long h = 7;
            for (unsigned long long i = 0; i < len; i++) h = mix(h, mem[i]);
            return h;
        }
        """,
        lambda data: functools.reduce(lambda h, b: (h ^ b) * 31 % 2**64, data, 7),
    ),
    # Global data: a constant table (.rodata), initialised and zeroed statics (.data, .bss).
    "crc32": (
        f"static const unsigned int table[256] = {{{', '.join(map(hex, CRC_TABLE))}}};\n"
        + """
        unsigned long long prog(unsigned char *mem, unsigned long long len) {
            unsigned int c = 0xffffffff;
            for (unsigned long long i = 0; i < len; i++) c = table[(c ^ mem[i]) & 0xff] ^ (c >> 8);
            return c ^ 0xffffffff;
        }
        """,
        zlib.crc32,
    ),
    "globals": (
        """
        unsigned long long seen = 1000;       /* .data */
        static unsigned char counts[256];     /* .bss */
        static void tally(unsigned char b) { counts[b]++; seen += b; }
        unsigned long long prog(unsigned char *mem, unsigned long long len) {
            for (unsigned long long i = 0; i < len; i++) tally(mem[i]);
            unsigned long long most = 0;
            for (int b = 1; b < 256; b++) if (counts[b] > counts[most]) most = b;
            return seen << 16 | most << 8 | counts[most];
        }
        """,
        lambda data: (1000 + sum(data)) << 16 | _mode(data) << 8 | data.count(_mode(data)),
    ),
}


def _mode(data: bytes) -> int:
    """The most frequent byte, the smallest of equals (as the C loop picks it)."""
    return max(range(256), key=lambda b: (data.count(b), -b))


def _fnv(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h


def _signed_sum(data: bytes) -> int:
    def trunc_div(x: int, y: int) -> int:
        q = abs(x) // abs(y)
        return q if (x < 0) == (y < 0) else -q

    acc = 0
    for i in range(0, len(data) - 1, 2):
        a = data[i] - 256 if data[i] > 127 else data[i]
        b = data[i + 1] or 1
        rem = abs(a) % 7 * (-1 if a < 0 else 1)
        acc += trunc_div(a * 1000, b) - rem
    return acc % 2**64


@pytest.mark.parametrize("name", sorted(C_PROGRAMS))
def test_clang_bpf_objects(name, tmp_path, clang, ebpf, capsys):
    source, expected = C_PROGRAMS[name]
    c = tmp_path / f"{name}.c"
    c.write_text(source)
    obj = tmp_path / f"{name}.o"
    subprocess.run([clang.path, "-target", "bpf", "-mcpu=v4", "-O2", "-c", str(c), "-o", str(obj)], check=True)
    data = bytes(random.Random(name).randrange(256) for _ in range(61))
    (tmp_path / "in.bin").write_bytes(data)
    for engine in ENGINES:
        assert main(["run", "--opset", "ebpf", str(obj), "--input", str(tmp_path / "in.bin"), *engine]) == 0
        assert int(capsys.readouterr().out, 16) == expected(data), engine


def test_elf_front_end_refuses_what_it_cannot_run(tmp_path, clang, capsys):
    c = tmp_path / "pointers.c"
    c.write_text(
        "static int a = 5, b = 7; static int *const p[2] = {&a, &b}; long prog(long *m, long n) { return *p[n & 1]; }\n"
    )
    obj = tmp_path / "pointers.o"
    subprocess.run([clang.path, "-target", "bpf", "-mcpu=v4", "-O2", "-c", str(c), "-o", str(obj)], check=True)
    assert main(["run", "--opset", "ebpf", str(obj)]) == 2
    assert "holds addresses to relocate (pointers in global data): not supported" in capsys.readouterr().err
    c.write_text("long one(void) { return 1; }\nlong two(void) { return 2; }\n")
    subprocess.run([clang.path, "-target", "bpf", "-O2", "-c", str(c), "-o", str(obj)], check=True)
    assert main(["run", "--opset", "ebpf", str(obj)]) == 2
    assert "several global functions in .text that none of the others calls (one, two)" in capsys.readouterr().err
    host = tmp_path / "host.o"
    subprocess.run([clang.path, "-O2", "-c", str(c), "-o", str(host)], check=True)
    assert main(["run", "--opset", "ebpf", str(host)]) == 2
    assert "not for BPF" in capsys.readouterr().err


def test_engines_report_timings(ebpf):
    program = ebpf.module.parse(HERE / "alu64.data")
    jit = run(ebpf, program, Engine.JIT)
    assert jit.steps == 9 + 1 and jit.compile_seconds > 0
    with pytest.raises(Rejected):
        ebpf.module.steps(ebpf.module.parse_data("-- raw\n0xff\n", "x.data"))


def test_the_ebpf_benchmark_runs_and_reports(tmp_path, capsys):
    """bench --opset ebpf: every program agrees on every engine, then the report (one repetition)."""
    from jit.opsets.bench import format_report, measure
    from jit.opsets.ebpf.bench import PROGRAMS

    report = measure(load("ebpf"), quick=True, repetitions=1)
    text = format_report(report)
    for p in PROGRAMS:
        assert p.name in text and report.instructions[p.name] > 20
        assert report.run_seconds[p.name]["interp"][0] > 0 and report.run_seconds[p.name]["jit"][0] > 0
    assert "C interpreter / copy-and-patch" in text and "insns/s" in text
    assert main(["bench", "--opset", "ebpf", "--ablation"]) == 2


# -- differential fuzzing: random programs on every engine ---------------------------------------


def random_program(rng: random.Random, name: str):
    """Straight-line code with forward jumps, stack traffic and a local call:
    every op class mixed, so that stencils meet each other (cases test them alone)."""
    ebpf = load("ebpf")
    mod = ebpf.module
    alu = [f.name for f in mod.FORMS if re.match(r"^(S?DIV|S?MOD|ADD|SUB|MUL|OR|AND|LSH|RSH|ARSH|XOR|MOV)", f.name)]
    alu += [f.name for f in mod.FORMS if f.name.startswith(("NEG", "LE", "BE", "BSWAP", "MOVSX"))]
    jumps = [f.name for f in mod.FORMS if re.match(r"^J[A-Z]+(64|32)_[KX]$", f.name)]
    memory = ["LDXB", "LDXH", "LDXW", "LDXDW", "LDXSB", "LDXSH", "LDXSW", "STB", "STH", "STW", "STDW"]
    memory += ["STXB", "STXH", "STXW", "STXDW", "ATOMIC64_FETCH_ADD", "ATOMIC32_XOR", "ATOMIC64_CMPXCHG"]
    Slot = mod.Slot
    body: list = []
    length = rng.randrange(10, 40)
    for k in range(length):
        kind = rng.random()
        dst, src = rng.randrange(10), rng.randrange(10)
        if kind < 0.55:
            op = mod.BY_NAME[rng.choice(alu)]
            off = op.value if op.field == "OFF" else 0
            imm = op.value if op.field == "IMM" else rng.choice((0, 1, -1, 3, 31, 64, rng.getrandbits(31)))
            body.append(Slot(op.opcode, dst, src, off, imm))
        elif kind < 0.75:
            op = mod.BY_NAME[rng.choice(memory)]
            size = mod.access_size(op.name)
            off = -size * rng.randrange(1, 16)
            imm = op.value if op.field == "IMM" else rng.getrandbits(31)
            if op.name.startswith("LDX"):
                body.append(Slot(op.opcode, dst, 10, off, 0))
            else:
                body.append(Slot(op.opcode, 10, src if "FETCH" not in op.name or src != 10 else 0, off, imm))
        elif kind < 0.9:
            op = mod.BY_NAME[rng.choice(jumps)]
            body.append(
                Slot(op.opcode, dst, src, rng.randrange(0, max(1, length - k)), rng.getrandbits(31) - (1 << 30))
            )
        else:
            body.append(Slot(0x85, 0, 1, 0, 0))  # call local: fixed up below
    # The callee: a few ALU ops on r0-r5, then exit.
    callee = [Slot(mod.BY_NAME["ADD64_X"].opcode, 0, rng.randrange(1, 6), 0, 0), Slot(0x95, 0, 0, 0, 0)]
    setup = []
    for reg in range(10):
        value = rng.getrandbits(64)
        setup += [Slot(0x18, reg, 0, 0, mod.signed(value, 32)), Slot(0, 0, 0, 0, mod.signed(value >> 32, 32))]
    code = setup + body + [Slot(0x95, 0, 0, 0, 0)]
    start_callee = len(code)
    fixed = []
    for k, s in enumerate(code):
        if s.opcode == 0x85 and s.src == 1:
            s = Slot(s.opcode, 0, 1, 0, start_callee - k - 1)
        elif re.match(r"^J", next((f.name for f in mod.BY_OPCODE.get(s.opcode, []) if f.name.startswith("J")), "")):
            s = Slot(s.opcode, s.dst, s.src, min(s.off, len(code) - k - 2), s.imm)  # forward, inside the code
        fixed.append(s)
    return mod.Program(name, tuple(fixed + callee), bytes(rng.randrange(256) for _ in range(32)))


def _fuzz(count: int, seed: int) -> None:
    ebpf = load("ebpf")
    rng = random.Random(seed)
    for n in range(count):
        program = random_program(rng, f"<fuzz {seed}:{n}>")
        expected = ebpf.module.interpret(program)
        for engine, target in (("interp", None), ("jit", None), ("jit", "aarch64-linux")):
            got = run(ebpf, program, Engine(engine), target).outcome
            assert got == expected, (n, engine, target, expected, got, program.slots)


def test_random_programs_agree_on_every_engine():
    _fuzz(30, 1)


@pytest.mark.fuzz
def test_fuzz_random_ebpf_programs(request):
    _fuzz(request.config.getoption("--fuzz-examples") * 3, 2)


def test_mangled_programs_are_clear_errors(tmp_path, clang, capsys):
    """Random damage to .data files and ELF objects: exit status 0, 1 or 2, never a traceback."""
    c = tmp_path / "p.c"
    c.write_text(C_PROGRAMS["fold"][0])
    obj = tmp_path / "p.o"
    subprocess.run([clang.path, "-target", "bpf", "-O2", "-c", str(c), "-o", str(obj)], check=True)
    seeds = [p.read_bytes() for p in DATA] + [obj.read_bytes()]
    inserts = [b"r11", b"-- asm\n", b"0x", b"[r10-9999]", b"lddw", b",", b"\n", b"-1", b"9" * 30, b"map_by_fd(x)"]
    rng = random.Random(5)
    target = tmp_path / "mangled.data"
    for n in range(150):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 6)):
            k = rng.randrange(len(data) or 1)
            roll = rng.random()
            if roll < 0.4 and data:
                data[k] = rng.randrange(256)
            elif roll < 0.6:
                del data[k : k + rng.randrange(1, 20)]
            elif roll < 0.8:
                data[k:k] = rng.choice(inserts)
            else:
                del data[k:]
        target.write_bytes(bytes(data))
        status = main(["run", "--opset", "ebpf", str(target), "--engine", rng.choice(["py", "interp", "jit"])])
        err = capsys.readouterr().err
        assert status in (0, 1, 2) and "Traceback" not in err, (n, status, err)


def test_the_reference_spends_the_loop_budget(ebpf, monkeypatch):
    """The budget in the reference, made small: it counts trips to a loop head
    as the TICK stencil does, and fails there once it is spent."""
    mod = ebpf.module
    monkeypatch.setitem(mod.CONST, "LOOP_BUDGET", 1000)
    outcome = mod.interpret(mod.parse(HERE / "endless-loop.data"))
    assert "more than 1,000 trips" in outcome.error and ":5:" in outcome.error
    assert outcome.observed[0] == 1000  # r0: the loop body ran once per trip


def test_stack_machine_options_are_refused_with_opset(tmp_path, capsys):
    program = tmp_path / "p.data"
    program.write_text("-- asm\nmov r0, 1\nexit\n")
    for extra in (["--backend", "llvm-O2"], ["--stats"], ["--hot-loop", "3"], ["--passes", "fold"], ["--gdb"]):
        assert main(["run", "--opset", "ebpf", str(program), *extra]) == 2, extra
        assert "does not go with --opset" in capsys.readouterr().err
    assert main(["validate", "--opset", "ebpf", "--samples", "5"]) == 2
    accepted = ["--eager", "--engine", "interp", "--target", "aarch64-linux"]  # (the interpreter runs here)
    assert main(["run", "--opset", "ebpf", str(program), *accepted]) == 0
    assert capsys.readouterr().out.strip() == "0x1"


@pytest.mark.parametrize("offset", [8, 64, 4096, 30000])
def test_an_access_past_a_buffer_is_described_alike_on_every_engine(tmp_path, capsys, offset):
    """Each engine lays the buffers out in its own place; an address outside
    them is still named alike (nearest buffer and offset): the native
    engines space their buffers as the emulator does."""
    data = tmp_path / "past.data"
    data.write_text(f"-- asm\nldxb %r0, [%r1+{offset}]\nexit\n-- mem\n00 01 02 03 04 05 06 07\n")
    errors = set()
    for engine in ENGINES:
        assert main(["run", "--opset", "ebpf", str(data), *engine]) == 1
        errors.add(capsys.readouterr().err.strip())
    assert errors == {f"{data}:2: runtime error: out-of-bounds access: 1 bytes at mem{offset:+#x}"}
