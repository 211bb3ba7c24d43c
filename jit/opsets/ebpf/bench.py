"""eBPF's own benchmark (`python -m jit bench --opset ebpf`): four programs
written in C (bench/ebpf/), compiled by clang -target bpf, on inputs made
for each; the engines first agree on a short input of each (the Python
reference is slow).  jit.opsets.bench times them as any op set's."""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from jit.errors import JitError
from jit.opsets.model import Benchmark
from jit.paths import EBPF_PROGRAMS_DIR, cache_dir

from .bpf_object import parse_elf
from .isa import decode


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

    from jit.build.toolchain import find_clang

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


def benchmark(quick: bool) -> Benchmark:
    """The programs on their inputs (smaller with `quick`)."""
    programs, checks, what = {}, {}, {}
    for p in PROGRAMS:
        program = parse_elf(compiled_object(EBPF_PROGRAMS_DIR / f"{p.name}.c"), f"{p.name}.c")
        programs[p.name] = replace(program, mem=p.make_input(p.quick_size if quick else p.size, 1))
        checks[p.name] = replace(program, mem=p.make_input(2048, 2))
        what[p.name] = p.what
    sizes = {name: len(program.mem) for name, program in programs.items()}
    return Benchmark(programs, what, checks, sizes, lambda program: len(decode(program)), "eBPF op set")
