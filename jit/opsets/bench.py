"""An op set's benchmark: its programs on the C interpreter and on
copy-and-patch, side by side (`python -m jit bench --opset NAME|DIR PROGRAM...`);
with no programs named, eBPF's own: C programs compiled by clang -target bpf
(`python -m jit bench --opset ebpf`).

Each program runs once on every engine first (eBPF's reference on a short
input), and every engine must give the same outcome.  Then, repetition by
repetition, the interpreter and the stitched code run interleaved (every
other repetition in reverse order); a run's time is the call into the code
alone (no compile, no buffer set-up).  Compile time is from the parsed
program (its instruction slots) to sealed code: decoding and checking the
instructions into steps, layout and stitching (the C stitcher), sealing.
Ratios are paired per repetition, reported as a geometric mean over the
programs with a bootstrap 95 % interval, as the main benchmark does.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import struct
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import JitError
from ..paths import EBPF_PROGRAMS_DIR, cache_dir
from ..targets import host_target
from ..tools.benchmark import _median_interval, _shown, machine_info, paired_ratio
from . import OpSet, load
from .engines import Engine, run, run_interp, run_native


def _random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _packets(n: int, seed: int) -> bytes:
    """Length-prefixed Ethernet frames: TCP to port 80 (some SYNs), UDP to
    port 53, ARP, and a few truncated ones."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        kind = rng.choice(("syn", "tcp", "dns", "udp", "arp", "short"))
        eth = bytes(12) + (b"\x08\x06" if kind == "arp" else b"\x08\x00")
        if kind == "short":
            frame = eth + b"\x45" + bytes(rng.randrange(0, 10))
        elif kind == "arp":
            frame = eth + bytes(28)
        else:
            proto = 6 if kind in ("syn", "tcp") else 17
            ip = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto]) + bytes(10)
            port = 80 if kind in ("syn", "tcp") else (53 if kind == "dns" else 123)
            if proto == 6:
                flags = 0x02 if kind == "syn" else 0x10
                l4 = bytes(2) + struct.pack(">H", port) + bytes(9) + bytes([flags]) + bytes(6)
            else:
                l4 = bytes(2) + struct.pack(">H", port) + bytes(4) + bytes(rng.randrange(0, 32))
            frame = eth + ip + l4
        out += struct.pack(">H", len(frame)) + frame
    return bytes(out)


@dataclass(frozen=True)
class BenchProgram:
    name: str
    what: str
    make_input: Callable[[int, int], bytes]
    size: int  # input bytes
    quick_size: int


PROGRAMS = (
    BenchProgram("checksum", "the Internet checksum of the input", _random_bytes, 1 << 18, 1 << 16),
    BenchProgram("hash", "a 64-bit hash, eight bytes at a time", _random_bytes, 1 << 18, 1 << 16),
    BenchProgram("sort", "Shell sort of the input bytes, in place", _random_bytes, 1 << 14, 1 << 12),
    BenchProgram("packets", "walk Ethernet/IPv4/TCP/UDP headers, count", _packets, 1 << 18, 1 << 16),
)


def compiled_object(source: Path) -> bytes:
    """clang -target bpf's object for one benchmark program (cached by content)."""
    import subprocess

    from ..build.toolchain import find_clang

    clang = find_clang()
    flags = ["-target", "bpf", "-mcpu=v4", "-O2", "-c"]
    key = hashlib.sha256(source.read_bytes() + " ".join([clang.version, *flags]).encode()).hexdigest()[:16]
    path = cache_dir() / "opsets" / "ebpf" / "bench" / f"{source.stem}-{key}.o"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        out = subprocess.run([clang.path, *flags, str(source), "-o", str(path)], capture_output=True, text=True)
        if out.returncode != 0:
            raise JitError(f"{source}: clang -target bpf failed:\n{out.stderr.strip()}")
    return path.read_bytes()


@dataclass
class OpsetReport:
    opset: str
    programs: dict[str, str]  # name -> what it does
    figures: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    run_seconds: dict[str, dict[str, list[float]]]  # program -> engine -> every repetition
    compile_seconds: dict[str, list[float]]  # program -> every repetition
    instructions: dict[str, int]
    input_bytes: dict[str, int]
    repetitions: int
    quick: bool
    machine_info: dict[str, object]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["intervals"] = {k: list(v) for k, v in self.intervals.items()}
        return data


FIGURES = {
    "interp_over_jit": "steady state, C interpreter / copy-and-patch (geomean)",
    "compile_insns_per_s": "compile, instructions -> sealed code (decode, stitch, seal), insns/s",
    "compile_per_insn_us": "compile, time per instruction",
}


def measure(quick: bool, repetitions: int | None = None) -> OpsetReport:
    """eBPF's benchmark: its C programs, on inputs made for each."""
    ebpf = load("ebpf")
    mod: Any = ebpf.module  # (eBPF's own functions too: parse_elf, with_input, decode)
    parsed, what = {}, {}
    for p in PROGRAMS:
        program = mod.parse_elf(compiled_object(EBPF_PROGRAMS_DIR / f"{p.name}.c"), f"{p.name}.c")
        size = p.quick_size if quick else p.size
        parsed[p.name], what[p.name] = mod.with_input(program, p.make_input(size, 1)), p.what
        # Every engine agrees first (the reference on a short input: it is slow).
        short = mod.with_input(program, p.make_input(2048, 2))
        outcomes = {e.value: run(ebpf, short, e).outcome for e in Engine}
        if len({*outcomes.values()}) != 1:
            raise JitError(f"{p.name}: the engines disagree: {outcomes}")
    sizes = {n: len(p.mem) for n, p in parsed.items()}
    return measure_programs(ebpf, parsed, what, quick, repetitions, sizes, lambda prog: len(mod.decode(prog)))


def measure_files(opset: OpSet, paths: list[Path], quick: bool, repetitions: int | None = None) -> OpsetReport:
    """Any op set's benchmark: program files its module parses, each run
    first on every engine (they must agree), then timed."""
    mod = opset.runnable()
    parsed = {}
    for path in paths:
        if path.stem in parsed:
            raise JitError(f"{path}: two benchmark programs are called {path.stem}")
        parsed[path.stem] = program = mod.parse(path)
        outcomes = {e.value: run(opset, program, e).outcome for e in Engine}
        if len({*outcomes.values()}) != 1:
            raise JitError(f"{path}: the engines disagree: {outcomes}")
        if next(iter(outcomes.values())).error is not None:
            raise JitError(f"{path}: {next(iter(outcomes.values())).error}")
    return measure_programs(opset, parsed, {n: str(p) for n, p in zip(parsed, paths, strict=True)}, quick, repetitions)


def measure_programs(
    opset: OpSet,
    parsed: dict[str, Any],
    what: dict[str, str],
    quick: bool,
    repetitions: int | None = None,
    input_bytes: dict[str, int] | None = None,
    count: Callable[[Any], int] | None = None,
) -> OpsetReport:
    """The C interpreter and copy-and-patch on each program, interleaved;
    `count`: a program's instructions (default: its steps)."""
    mod = opset.runnable()
    reps = repetitions or (5 if quick else 11)
    runs: dict[str, dict[str, list[float]]] = {n: {"interp": [], "jit": []} for n in parsed}
    compiles: dict[str, list[float]] = {n: [] for n in parsed}
    instructions = {n: (count or (lambda prog: len(mod.steps(prog))))(prog) for n, prog in parsed.items()}
    for rep in range(reps):
        for name, program in parsed.items():
            order = ["interp", "jit"] if rep % 2 == 0 else ["jit", "interp"]
            for engine in order:
                result = run_interp(opset, program) if engine == "interp" else run_native(opset, program)
                runs[name][engine].append(result.run_seconds)
                if engine == "jit":
                    compiles[name].append(result.compile_seconds)
        sys.stderr.write(f"\rbench --opset {opset.name}: repetition {rep + 1} of {reps}")
    sys.stderr.write("\n")
    rng = random.Random(0)
    figures: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    value, low, high = paired_ratio(runs, "interp", "jit", rng)
    figures["interp_over_jit"], intervals["interp_over_jit"] = value, (low, high)
    total = sum(instructions.values())
    per_rep = [sum(compiles[n][k] for n in compiles) for k in range(reps)]
    value, low, high = _median_interval([total / s for s in per_rep], rng)
    figures["compile_insns_per_s"], intervals["compile_insns_per_s"] = value, (low, high)
    value, low, high = _median_interval([s * 1e6 / total for s in per_rep], rng)
    figures["compile_per_insn_us"], intervals["compile_per_insn_us"] = value, (low, high)
    return OpsetReport(
        opset.name,
        what,
        figures,
        intervals,
        runs,
        compiles,
        instructions,
        input_bytes or {},
        reps,
        quick,
        machine_info(),
    )


def _title(name: str) -> str:
    return "eBPF op set" if name == "ebpf" else f"op set {name}"


def format_report(report: OpsetReport) -> str:
    lines = [
        f"{_title(report.opset)} on {host_target()}: the C interpreter and copy-and-patch, built from the same bodies"
    ]
    lines.append(f"{'figure':<66}{'median':>13}  95% interval")
    for key, what in FIGURES.items():
        low, high = report.intervals[key]
        lines.append(f"{what:<66}{_shown(key, report.figures[key]):>13}  [{_shown(key, low)}, {_shown(key, high)}]")
    lines.append("")
    lines.append(f"median of {report.repetitions} interleaved repetitions; run times in ms, compile in ms")
    sized = bool(report.input_bytes)
    lines.append(
        f"{'program':<10}{'input bytes' if sized else '':>12}{'insns':>7}{'interp':>11}{'jit':>11}"
        f"{'interp/jit':>12}{'compile':>10}  what"
    )
    for name, what in report.programs.items():
        row = report.run_seconds[name]
        interp, jit = statistics.median(row["interp"]), statistics.median(row["jit"])
        ratio = statistics.median(a / b for a, b in zip(row["interp"], row["jit"], strict=True))
        compile_ms = statistics.median(report.compile_seconds[name]) * 1e3
        size = f"{report.input_bytes[name]:>12,}" if sized else f"{'':>12}"
        lines.append(
            f"{name:<10}{size}{report.instructions[name]:>7}"
            f"{interp * 1e3:>11.3f}{jit * 1e3:>11.3f}{ratio:>11.2f}x{compile_ms:>10.3f}  {what}"
        )
    info = report.machine_info
    lines.append("")
    lines.append(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['system']}; python {info['python']}, "
        f"{info['clang']}; {info['date']}"
    )
    return "\n".join(lines) + "\n"
