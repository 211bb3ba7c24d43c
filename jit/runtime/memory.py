"""Executable memory: an arena of mappings, W^X, with the icache flushed.

Regions are parts of larger mappings (chunks), so one mapping holds many
traces.  By default a chunk is mapped twice (dual mapping): the
same pages (a memfd) once read-execute, where code runs, and once
read-write, where it is written (Region.view); no mapping is ever both
writable and executable, and no compile, link or free changes a protection
(a system call of several microseconds each, the largest fixed cost of a
compile before), so regions are packed at cache-line granularity.
A compile in C (stencils/compile.c's jit_compile) takes its code from
the arena's open run, a stretch of one dual-mapped chunk that C hands out
by bumping its top, so a compile allocates without leaving C; Python
counts the region and makes its Region object only when it is asked for.
Arena(dual=False), or a system without memfd_create, maps each chunk once
and flips a region between read-write (while it is filled or re-patched)
and read-execute with mprotect, so its regions are whole pages; free space
stays read-write there.  Either way every protection goes through one
function that refuses W+X, and a chunk whose regions are all freed is
unmapped (both views), so the process's mappings return to where they
started.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..build.hostlib import ffi_for, hostlib
from ..errors import JitError

PAGE = mmap.PAGESIZE
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE = 0x01, 0x02, 0x20, 0x4000
MFD_CLOEXEC = 0x1
MAP_FAILED = (1 << 64) - 1
DEFAULT_CHUNK = 1 << 20


class ExecMemoryError(JitError):
    """mmap/mprotect failed, or a protection that would be writable and executable."""


LIBC = """
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int mprotect(uintptr_t addr, size_t len, int prot);  /* (an address as an integer: no cast per call) */
int munmap(void *addr, size_t length);
int memfd_create(const char *name, unsigned int flags);
int ftruncate(int fd, long length);
int close(int fd);
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


def map_pages(size: int, prot: int, flags: int, fd: int = -1, where: int = 0) -> int:
    """mmap (at `where` if not 0, as a hint), refusing W and X together; the address."""
    if prot & PROT_WRITE and prot & PROT_EXEC:
        raise ExecMemoryError("refusing a writable and executable mapping")
    ffi, libc = _libc()
    hint = ffi.cast("void *", where) if where else ffi.NULL
    address = int(ffi.cast("uintptr_t", libc.mmap(hint, size, prot, flags, fd, 0)))
    if address == MAP_FAILED:
        raise ExecMemoryError(f"mmap of {size} bytes failed: {os.strerror(ffi.errno)}")
    return address


def unmap(address: int, size: int) -> None:
    ffi, libc = _libc()
    if libc.munmap(ffi.cast("void *", address), size) != 0:
        raise ExecMemoryError(f"munmap failed: {os.strerror(ffi.errno)}")


def _round(n: int) -> int:
    return max(PAGE, (n + PAGE - 1) // PAGE * PAGE)


# A dual-mapped chunk is never mprotected, so its regions need not be whole
# pages: they are packed at cache-line granularity (more traces to a page and
# to a TLB entry).  Without dual mapping, a region is whole pages, since
# sealing and re-patching change protection page by page.
GRANULE = 64


@dataclass
class _Chunk:
    address: int
    size: int
    free: list[tuple[int, int]]  # (offset, length) runs, sorted, coalesced
    used: int = 0
    view: int = 0  # the read-write mapping of the same pages (dual mapping), or 0

    def rounded(self, n: int) -> int:
        """What a region of n bytes takes of this chunk."""
        return max(GRANULE, -(-n // GRANULE) * GRANULE) if self.view else _round(n)

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
    """Part of a chunk (whole pages of it, unless dual-mapped): filled while
    writable, then sealed read-execute."""

    arena: Arena
    chunk: _Chunk
    address: int
    size: int
    writable: bool = True
    freed: bool = False
    used: int = 0  # bytes actually filled
    run: int = 0  # the arena's run jit_compile took it from (Arena.adopt), or 0

    @property
    def view(self) -> int:
        """Where the region's bytes are written: its read-write view (dual
        mapping), or its own address (writable until sealed)."""
        chunk = self.chunk
        return chunk.view + (self.address - chunk.address) if chunk.view else self.address

    def write(self, offset: int, data: bytes | bytearray) -> None:
        if not self.writable or self.freed:
            raise ExecMemoryError("region is not writable (seal() made it read-execute)")
        if offset < 0 or offset + len(data) > self.size:
            raise ExecMemoryError(f"write of {len(data)} bytes at {offset} outside a region of {self.size}")
        ffi, _ = _libc()
        ffi.memmove(ffi.cast("char *", self.view + offset), bytes(data), len(data))
        self.used = max(self.used, offset + len(data))

    def read(self, offset: int = 0, size: int | None = None) -> bytes:
        ffi, _ = _libc()
        n = self.size - offset if size is None else size
        return bytes(ffi.buffer(ffi.cast("char *", self.address + offset), n))

    def seal(self, flushed: bool = False) -> None:
        """Read-execute from now on (written no more), with the instruction
        cache made coherent (unless what wrote it did: `flushed`)."""
        if not self.chunk.view:
            protect(self.address, self.size, PROT_READ | PROT_EXEC)
        self.writable = False
        if not flushed:
            _, lib = hostlib()
            lib.jit_flush_icache(self.address, self.address + self.size)

    def patch(self, offset: int, data: bytes) -> None:
        """Re-patch sealed code (a link): written through its view, or with
        the region made read-write and not executable meanwhile; then the
        instruction cache made coherent."""
        if self.freed or offset < 0 or offset + len(data) > self.size:
            raise ExecMemoryError(f"patch of {len(data)} bytes at {offset} outside a live region of {self.size}")
        if not self.chunk.view:
            protect(self.address, self.size, PROT_READ | PROT_WRITE)
        ffi, _ = _libc()
        ffi.memmove(ffi.cast("char *", self.view + offset), data, len(data))
        if not self.chunk.view:
            protect(self.address, self.size, PROT_READ | PROT_EXEC)
        _, lib = hostlib()
        lib.jit_flush_icache(self.address + offset, self.address + offset + len(data))

    def free(self) -> None:
        self.arena.free(self)


# What a compile in C (stencils/compile.c's jit_compile) takes its code from
# at most: the arena's open run, a stretch of one dual-mapped chunk.
RUN = 256 << 10


@dataclass
class Arena:
    chunk_size: int = DEFAULT_CHUNK
    hint: int = 0  # where to ask mmap to put chunks (0: anywhere); tests use it to force far targets
    dual: bool = True  # two views of each chunk, read-execute and read-write (where memfd_create exists)
    run_size: int = RUN  # bytes a run takes from a chunk at most (unless a compile needs more)
    chunks: list[_Chunk] = field(default_factory=list)
    regions: int = 0
    # The open run (a CodeRun): a stretch taken whole from one chunk, from
    # which jit_compile hands out code in C, bumping its top.  Its regions
    # are made when first asked for (adopted); what they free stays the
    # run's (the whole run again once none is live) until the run is
    # retired, when a compile finds it full or its chunk holds nothing else.
    _run: Any = None
    _run_chunk: _Chunk | None = None
    _run_number: int = 0  # counts the runs opened, so that a region knows its own
    _run_live: int = 0  # regions taken from the open run and not yet freed
    _run_freed: list[tuple[int, int]] = field(default_factory=list)  # (offset in the chunk, bytes) freed below top

    def allocate(self, size: int) -> Region:
        for chunk in self.chunks:
            n = chunk.rounded(size)
            off = chunk.take(n)
            if off is not None:
                return self._region(chunk, off, n)
        chunk = self._map(max(self.chunk_size, _round(size)))
        n = chunk.rounded(size)
        off = chunk.take(n)
        assert off is not None
        return self._region(chunk, off, n)

    def code_run(self) -> Any:
        """The open run, for jit_compile (empty until refilled); None
        without dual mapping, where code is written before its region is sealed."""
        if not self.dual:
            return None
        if self._run is None:
            ffi, _ = hostlib()
            self._run = ffi.new("CodeRun *")
            self._run.granule = GRANULE
        return self._run

    def refill(self, need: int) -> bool:
        """Give the run room for `need` bytes: it is retired, and a new one
        takes up to run_size bytes (`need` at least) of a chunk that has them,
        mapped if none has.  False when chunks can no longer be dual-mapped
        (then compiles go through allocate())."""
        self._retire()
        want = max(need, self.run_size)
        for chunk in self.chunks:
            if chunk.view:
                room = max((n for _, n in chunk.free), default=0)
                if room >= need:
                    return self._open(chunk, min(room, want))
        chunk = self._map(max(self.chunk_size, _round(want)))
        if not chunk.view:  # (memfd_create failed: dual mapping is off from now on)
            self._unmap(chunk)
            return False
        return self._open(chunk, min(chunk.size, want))

    def _open(self, chunk: _Chunk, size: int) -> bool:
        off = chunk.take(size)
        assert off is not None
        run = self._run
        run.rx, run.rw, run.size, run.top = chunk.address + off, chunk.view + off, size, 0
        self._run_chunk = chunk
        self._run_number += 1
        return True

    def adopt(self) -> tuple[_Chunk, int]:
        """Count the code jit_compile just took from the run as a region:
        its chunk and run number, to make the Region with when it is first
        asked for (adopted)."""
        chunk = self._run_chunk
        assert chunk is not None
        self._run_live += 1
        self.regions += 1
        return chunk, self._run_number

    def adopted(self, chunk: _Chunk, run: int, address: int, size: int) -> Region:
        """The sealed region of code jit_compile put at `address` (adopt counted it)."""
        return Region(self, chunk, address, size, writable=False, used=size, run=run)

    def _run_free(self, region: Region) -> None:
        """A region of the open run freed: its bytes stay the run's (all of
        them again once none is live), unless the run is all its chunk holds."""
        run, chunk = self._run, region.chunk
        self._run_live -= 1
        self._run_freed.append((region.address - chunk.address, region.size))
        if self._run_live == 0:
            run.top = 0
            self._run_freed.clear()
            self._retire_if_alone(chunk)

    def _retire_if_alone(self, chunk: _Chunk) -> bool:
        """Retire the open run (and unmap its chunk) when it holds no live
        code and is all its chunk holds: whether it did."""
        if chunk is not self._run_chunk or self._run_live or chunk.used != self._run.size:
            return False
        self._retire()
        return True

    def _retire(self) -> None:
        """The run's free bytes back to its chunk (unmapped if nothing else is in it)."""
        chunk, run = self._run_chunk, self._run
        if chunk is None:
            return
        for off, size in self._run_freed:
            chunk.give(off, size)
        if run.size > run.top:
            chunk.give(run.rx + run.top - chunk.address, run.size - run.top)
        run.rx = run.rw = run.size = run.top = 0
        self._run_chunk, self._run_live = None, 0
        self._run_freed.clear()
        if chunk.used == 0:
            self._unmap(chunk)

    def _unmap(self, chunk: _Chunk) -> None:
        for address in (chunk.address, chunk.view) if chunk.view else (chunk.address,):
            unmap(address, chunk.size)
        self.chunks.remove(chunk)

    def _map(self, size: int) -> _Chunk:
        ffi, libc = _libc()
        where = self.hint + sum(c.size for c in self.chunks) if self.hint else 0
        if self.dual:
            try:
                fd = libc.memfd_create(b"jit-code", MFD_CLOEXEC)
            except AttributeError:  # (no such function in this C library)
                fd = -1
            if fd < 0:
                self.dual = False  # (and map as below, from now on)
            else:
                try:
                    if libc.ftruncate(fd, size) != 0:
                        raise ExecMemoryError(f"ftruncate of a {size}-byte memfd failed: {os.strerror(ffi.errno)}")
                    code = map_pages(size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, where)
                    try:
                        view = map_pages(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd)
                    except ExecMemoryError:
                        unmap(code, size)
                        raise
                finally:
                    libc.close(fd)  # (the mappings keep the pages)
                chunk = _Chunk(code, size, [(0, size)], view=view)
                self.chunks.append(chunk)
                return chunk
        chunk = _Chunk(
            map_pages(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, where), size, [(0, size)]
        )
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
        if not region.writable and not chunk.view:
            protect(region.address, region.size, PROT_READ | PROT_WRITE)
        if region.run and region.run == self._run_number and chunk is self._run_chunk:
            self._run_free(region)
            return
        chunk.give(region.address - chunk.address, region.size)
        if not self._retire_if_alone(chunk) and chunk.used == 0:
            self._unmap(chunk)

    def stats(self) -> dict[str, int]:
        """Bytes mapped and in use (the open run's free bytes are not), and
        how many mappings and regions."""
        run = self._run
        spare = run.size - run.top + sum(n for _, n in self._run_freed) if self._run_chunk else 0
        return {
            "mappings": len(self.chunks),
            "bytes_mapped": sum(c.size for c in self.chunks),
            "bytes_used": sum(c.used for c in self.chunks) - spare,
            "regions": self.regions,
        }
