"""perf's jitdump format: every compiled piece with its bytes and its source lines, for `perf inject --jit`.

The format is perf's (tools/perf/Documentation/jitdump-specification.txt in
Linux): a header, then records.  For each piece of code a JIT_CODE_DEBUG_INFO
record (address -> .uop file and line, one entry per step) comes first, then
its JIT_CODE_LOAD record (name, address, bytes).  The file is called
jit-PID.dump, and the process maps it executable once: that mapping is how
`perf record` learns where the file is, and `perf inject --jit` then writes
one ELF object per load record, which `perf report` and `perf annotate` read.
Timestamps are CLOCK_MONOTONIC, so record with `perf record -k mono`.
"""

from __future__ import annotations

import atexit
import mmap
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .codeinfo import CodeInfo

MAGIC = 0x4A695444  # "JiTD", written in the machine's order
VERSION = 1
HEADER = struct.Struct("<IIIIIIQQ")  # magic, version, total_size, elf_mach, pad1, pid, timestamp, flags
RECORD = struct.Struct("<IIQ")  # id, total_size, timestamp
CODE_LOAD, CODE_MOVE, CODE_DEBUG_INFO, CODE_CLOSE = 0, 1, 2, 3
LOAD = struct.Struct("<IIQQQQ")  # pid, tid, vma, code_addr, code_size, code_index
DEBUG = struct.Struct("<QQ")  # code_addr, nr_entry
ENTRY = struct.Struct("<QII")  # addr, lineno, discrim
ELF_MACHINES = {"x86_64-linux": 62, "aarch64-linux": 183}  # EM_X86_64, EM_AARCH64


def _now() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class JitDump:
    """An open jit-PID.dump: `add` each piece of code as it is compiled, `close` at the end.

    perf wants one file per process, so runs share one (`for_process`),
    closed when the process exits."""

    def __init__(self, target: str, directory: str | os.PathLike[str] = "/tmp") -> None:
        self.path = Path(directory) / f"jit-{os.getpid()}.dump"
        self._file = open(self.path, "w+b")  # noqa: SIM115 (held open until close; mapped, so readable)
        self._file.write(HEADER.pack(MAGIC, VERSION, HEADER.size, ELF_MACHINES[target], 0, os.getpid(), _now(), 0))
        self._file.flush()
        # The marker mapping perf looks for: read and execute, never written.
        self._marker = mmap.mmap(
            self._file.fileno(), HEADER.size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_EXEC
        )
        self._index = 0

    def add(self, info: CodeInfo) -> None:
        entries = b"".join(
            ENTRY.pack(info.address + s.offset, s.line, 0) + info.filename.encode() + b"\0" for s in info.steps
        )
        body = DEBUG.pack(info.address, len(info.steps)) + entries
        self._record(CODE_DEBUG_INFO, body)
        load = LOAD.pack(
            os.getpid(), threading.get_native_id(), info.address, info.address, len(info.code), self._index
        )
        self._record(CODE_LOAD, load + info.name.encode() + b"\0" + info.code)
        self._index += 1

    def _record(self, kind: int, body: bytes) -> None:
        self._file.write(RECORD.pack(kind, RECORD.size + len(body), _now()) + body)
        self._file.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        self._record(CODE_CLOSE, b"")
        self._marker.close()
        self._file.close()


_shared: dict[int, JitDump] = {}  # pid -> this process's dump


def for_process(target: str) -> JitDump:
    """This process's dump, opened on first use (a fork gets its own)."""
    pid = os.getpid()
    if pid not in _shared:
        _shared[pid] = JitDump(target)
        atexit.register(_shared[pid].close)
    return _shared[pid]


class RunDump:
    """One run's view of the process's dump: the run ending does not end the file."""

    def __init__(self, target: str) -> None:
        self.dump = for_process(target)

    def add(self, info: CodeInfo) -> None:
        self.dump.add(info)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class LoadRecord:
    name: str
    address: int
    code: bytes
    index: int
    timestamp: int
    lines: tuple[tuple[int, int, str], ...]  # (address, line, file) from the debug record before it


def read(path: str | os.PathLike[str]) -> tuple[int, list[LoadRecord]]:
    """Parse a jitdump file (our own reader, for the tests and for checking a
    dump by hand): its ELF machine and its load records, each with the debug
    entries that came before it.  Anything malformed raises ValueError."""
    data = Path(path).read_bytes()
    if len(data) < HEADER.size:
        raise ValueError("shorter than a jitdump header")
    magic, version, size, machine, _, _, _, _ = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or size != HEADER.size:
        raise ValueError(f"not a jitdump file (magic {magic:#x}, version {version}, header {size} bytes)")
    loads: list[LoadRecord] = []
    pending: tuple[tuple[int, int, str], ...] = ()
    at = size
    while at < len(data):
        kind, total, stamp = RECORD.unpack_from(data, at)
        if total < RECORD.size or at + total > len(data):
            raise ValueError(f"record at {at}: size {total} runs past the end")
        body = data[at + RECORD.size : at + total]
        if kind == CODE_DEBUG_INFO:
            addr, count = DEBUG.unpack_from(body)
            lines, pos = [], DEBUG.size
            for _ in range(count):
                a, line, _ = ENTRY.unpack_from(body, pos)
                end = body.index(b"\0", pos + ENTRY.size)
                lines.append((a, line, body[pos + ENTRY.size : end].decode()))
                pos = end + 1
            pending = tuple(lines)
        elif kind == CODE_LOAD:
            _, _, vma, addr, code_size, index = LOAD.unpack_from(body)
            end = body.index(b"\0", LOAD.size)
            name = body[LOAD.size : end].decode()
            code = body[end + 1 :]
            if len(code) != code_size or vma != addr:
                raise ValueError(f"load record {index}: {len(code)} bytes of code, header says {code_size}")
            loads.append(LoadRecord(name, addr, code, index, stamp, pending))
            pending = ()
        elif kind not in (CODE_MOVE, CODE_CLOSE):
            raise ValueError(f"record at {at}: unknown kind {kind}")
        at += total
    return machine, loads
