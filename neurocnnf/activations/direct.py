"""Bulk writes past the page cache (``O_DIRECT``), where the system takes them.

An extraction writes about as many bytes as its pass computes (1.35 MB per image for every
layer of FMNIST-small at T = 5). Buffered, each byte first lands in a page of the page cache
that the kernel must find: on a virtual machine whose balloon hands free memory back to the
host, every such page is a fault into the host, and on the development machine a 345 MB
buffered write took 3.2 s (105 MB/s) against 0.13-0.23 s with ``O_DIRECT``
(``benchmarks/README.md``, "Storage overhead"). :class:`DirectWriter` writes the whole blocks
of a run straight from the caller's memory when it and the file position start on a block
boundary (``aligned_empty`` makes such arrays; extraction's are), and copies the rest through
one reused, page-aligned buffer; a write that starts or ends inside a block reads that block
first. Where ``O_DIRECT`` does not exist (not Linux) or a file system
refuses it (tmpfs), it writes the ordinary way. The bytes in the file are the same either way.
"""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path

import numpy as np
import torch

BLOCK = 4096  # bytes: O_DIRECT's alignment of offsets, lengths and memory (any block size <= it)
PIECE = 2 * 2**20  # bytes copied and written per call (a multiple of BLOCK; 8 MiB wrote no faster)


class DirectWriter:
    """Writes byte runs into files, with ``O_DIRECT`` while the file system accepts it.

    Not thread-safe: one writer per thread (it owns one ``piece``-sized buffer).
    """

    def __init__(self, direct: bool = True, piece: int = PIECE) -> None:
        if piece % BLOCK:
            raise ValueError(f"piece must be a multiple of {BLOCK} bytes, not {piece}")
        self.direct = direct and hasattr(os, "O_DIRECT")
        self.piece = piece
        self._buffer: mmap.mmap | None = None

    def write(self, path: Path, data, position: int = 0, whole: bool = False) -> None:
        """Write ``data`` (bytes-like) at byte ``position`` of the existing file ``path``;
        ``whole``: ``path`` holds exactly ``data`` afterwards (created or truncated)."""
        data = memoryview(data).cast("B")
        if self.direct:
            try:
                self._write_direct(path, data, position, whole)
                return
            except OSError as error:
                if error.errno != errno.EINVAL:
                    raise
                self.direct = False  # refused here (tmpfs): ordinary writes from now on
        with open(path, "wb" if whole else "r+b") as file:
            file.seek(position)
            file.write(data)

    def _write_direct(self, path: Path, data: memoryview, position: int, whole: bool) -> None:
        flags = os.O_RDWR | os.O_DIRECT | (os.O_CREAT | os.O_TRUNC if whole else 0)
        fd = os.open(path, flags, 0o666)
        try:
            end = position + len(data)
            size = end if whole else max(os.fstat(fd).st_size, end)
            straight = _aligned_blocks(data, position)
            if straight:  # no copy: the blocks go from the caller's memory
                _pwrite_all(fd, data[:straight], position)
                data, position = data[straight:], position + straight
            self._write_copied(fd, data, position, whole)
            if -(-end // BLOCK) * BLOCK > size:  # the last whole block passed the end
                os.ftruncate(fd, size)
        finally:
            os.close(fd)

    def _write_copied(self, fd: int, data: memoryview, position: int, whole: bool) -> None:
        """Write ``data`` at ``position`` through the aligned buffer, in whole blocks."""
        if not data:
            return
        buffer = self._aligned()
        end = position + len(data)
        offset = position - position % BLOCK
        while offset < end:
            stop = min(offset + self.piece, -(-end // BLOCK) * BLOCK)
            first, last = max(position, offset), min(end, stop)
            if first > offset:  # the run starts inside a block: keep its bytes before
                _read_block(fd, buffer, 0, offset)
            if last < stop:  # ... or ends inside one: keep its bytes after (none if whole)
                if whole:
                    buffer[last - offset:stop - offset] = bytes(stop - last)
                else:
                    _read_block(fd, buffer, stop - offset - BLOCK, stop - BLOCK)
            buffer[first - offset:last - offset] = data[first - position:last - position]
            _pwrite_all(fd, buffer[:stop - offset], offset)
            offset = stop

    def _aligned(self) -> memoryview:
        if self._buffer is None:
            self._buffer = mmap.mmap(-1, self.piece)  # anonymous maps are page-aligned
        return memoryview(self._buffer)


def aligned_empty(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised float32 CPU tensor of ``shape`` whose data start on a block boundary,
    so that :class:`DirectWriter` writes its whole blocks without copying them (the same
    allocator as ``torch.empty``, a block's worth of elements more)."""
    numel = int(np.prod(shape))
    flat = torch.empty(numel + BLOCK // 4)
    skip = -flat.data_ptr() % BLOCK // 4  # data_ptr is a multiple of 64 bytes
    return flat[skip:skip + numel].view(shape)


def _aligned_blocks(data: memoryview, position: int) -> int:
    """How many leading bytes of ``data`` can be written at ``position`` straight from its
    memory: its whole blocks when both start on a block boundary, else 0."""
    if position % BLOCK or len(data) < BLOCK:
        return 0
    return 0 if np.frombuffer(data, np.uint8).ctypes.data % BLOCK else len(data) - len(data) % BLOCK


def _read_block(fd: int, buffer: memoryview, at: int, offset: int) -> None:
    """Read the block at file ``offset`` into ``buffer[at:at + BLOCK]``, zeros past the end."""
    block = buffer[at:at + BLOCK]
    got = os.preadv(fd, [block], offset)
    block[got:] = bytes(BLOCK - got)


def _pwrite_all(fd: int, data: memoryview, position: int) -> None:
    while data:
        written = os.pwrite(fd, data, position)
        data, position = data[written:], position + written
