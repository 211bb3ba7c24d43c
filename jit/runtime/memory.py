"""Executable memory: an arena of mappings, W^X, with the icache flushed.

Regions are whole pages inside larger mappings (chunks), so one mapping
holds many traces and each region's protection can change alone.  A region
is mapped read-write while it is filled, then read-execute; re-patching it
(trace linking) flips it back to read-write and then to read-execute again.
Free space is kept read-write (never executable), so taking a region costs
no system call, and a compile costs one mprotect, freeing it another.
Every protection change goes through one function that refuses W+X.  A
chunk whose regions are all freed is unmapped, so the process's mappings
return to where they started.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..build.hostlib import ffi_for, hostlib
from ..errors import JitError

PAGE = mmap.PAGESIZE
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4
MAP_PRIVATE, MAP_ANONYMOUS = 0x02, 0x20
MAP_FAILED = (1 << 64) - 1
DEFAULT_CHUNK = 1 << 20


class ExecMemoryError(JitError):
    """mmap/mprotect failed, or a protection that would be writable and executable."""


LIBC = """
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int mprotect(uintptr_t addr, size_t len, int prot);  /* (an address as an integer: no cast per call) */
int munmap(void *addr, size_t length);
"""


@cache
def _libc() -> tuple[Any, Any]:
    ffi = ffi_for("_jitlibc_cffi", LIBC)
    return ffi, ffi.dlopen(None)


def protect(address: int, size: int, prot: int) -> None:
    """The only way protections change here: W and X together are refused."""
    if prot & PROT_WRITE and prot & PROT_EXEC:
        raise ExecMemoryError("refusing a writable and executable mapping")
    ffi, libc = _libc()
    if libc.mprotect(address, size, prot) != 0:
        raise ExecMemoryError(f"mprotect({address:#x}, {size}, {prot}) failed: {os.strerror(ffi.errno)}")


def _round(n: int) -> int:
    return max(PAGE, (n + PAGE - 1) // PAGE * PAGE)


@dataclass
class _Chunk:
    address: int
    size: int
    free: list[tuple[int, int]]  # (offset, length) runs, sorted, coalesced
    used: int = 0

    def take(self, size: int) -> int | None:
        for k, (off, length) in enumerate(self.free):
            if length >= size:
                if length == size:
                    del self.free[k]
                else:
                    self.free[k] = (off + size, length - size)
                self.used += size
                return off
        return None

    def give(self, off: int, size: int) -> None:
        self.used -= size
        runs = sorted([*self.free, (off, size)])
        merged: list[tuple[int, int]] = []
        for o, n in runs:
            if merged and merged[-1][0] + merged[-1][1] == o:
                merged[-1] = (merged[-1][0], merged[-1][1] + n)
            else:
                merged.append((o, n))
        self.free = merged


@dataclass
class Region:
    """Whole pages of a chunk: filled while writable, then sealed read-execute."""

    arena: Arena
    chunk: _Chunk
    address: int
    size: int
    writable: bool = True
    freed: bool = False
    used: int = 0  # bytes actually filled

    def write(self, offset: int, data: bytes | bytearray) -> None:
        if not self.writable or self.freed:
            raise ExecMemoryError("region is not writable (seal() made it read-execute)")
        if offset < 0 or offset + len(data) > self.size:
            raise ExecMemoryError(f"write of {len(data)} bytes at {offset} outside a region of {self.size}")
        ffi, _ = _libc()
        ffi.memmove(ffi.cast("char *", self.address + offset), bytes(data), len(data))
        self.used = max(self.used, offset + len(data))

    def read(self, offset: int = 0, size: int | None = None) -> bytes:
        ffi, _ = _libc()
        n = self.size - offset if size is None else size
        return bytes(ffi.buffer(ffi.cast("char *", self.address + offset), n))

    def seal(self) -> None:
        """Read-execute from now on, with the instruction cache made coherent."""
        protect(self.address, self.size, PROT_READ | PROT_EXEC)
        self.writable = False
        _, lib = hostlib()
        lib.jit_flush_icache(self.address, self.address + self.size)

    @contextmanager
    def unsealed(self) -> Iterator[Region]:
        """Writable (and not executable) for the duration: for re-patching."""
        protect(self.address, self.size, PROT_READ | PROT_WRITE)
        self.writable = True
        try:
            yield self
        finally:
            self.seal()

    def free(self) -> None:
        self.arena.free(self)


@dataclass
class Arena:
    chunk_size: int = DEFAULT_CHUNK
    hint: int = 0  # where to ask mmap to put chunks (0: anywhere); tests use it to force far targets
    chunks: list[_Chunk] = field(default_factory=list)
    regions: int = 0

    def allocate(self, size: int) -> Region:
        size = _round(size)
        for chunk in self.chunks:
            off = chunk.take(size)
            if off is not None:
                return self._region(chunk, off, size)
        chunk = self._map(max(self.chunk_size, size))
        off = chunk.take(size)
        assert off is not None
        return self._region(chunk, off, size)

    def _map(self, size: int) -> _Chunk:
        ffi, libc = _libc()
        where = ffi.cast("void *", self.hint + sum(c.size for c in self.chunks)) if self.hint else ffi.NULL
        ptr = libc.mmap(where, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        address = int(ffi.cast("uintptr_t", ptr))
        if address == MAP_FAILED:
            raise ExecMemoryError(f"mmap of {size} bytes failed: {os.strerror(ffi.errno)}")
        chunk = _Chunk(address, size, [(0, size)])
        self.chunks.append(chunk)
        return chunk

    def _region(self, chunk: _Chunk, off: int, size: int) -> Region:
        self.regions += 1
        return Region(self, chunk, chunk.address + off, size)

    def free(self, region: Region) -> None:
        if region.freed:
            return
        region.freed = True
        self.regions -= 1
        chunk = region.chunk
        if not region.writable:
            protect(region.address, region.size, PROT_READ | PROT_WRITE)
        chunk.give(region.address - chunk.address, region.size)
        if chunk.used == 0:
            ffi, libc = _libc()
            if libc.munmap(ffi.cast("void *", chunk.address), chunk.size) != 0:
                raise ExecMemoryError(f"munmap failed: {os.strerror(ffi.errno)}")
            self.chunks.remove(chunk)

    def stats(self) -> dict[str, int]:
        """Bytes mapped and in use, and how many mappings and regions."""
        return {
            "mappings": len(self.chunks),
            "bytes_mapped": sum(c.size for c in self.chunks),
            "bytes_used": sum(c.used for c in self.chunks),
            "regions": self.regions,
        }
