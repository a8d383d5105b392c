"""The extraction's byte writer (neurocnnf.activations.direct): O_DIRECT where the file system
takes it, the same bytes as ordinary writes wherever a run starts or ends inside a block."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from neurocnnf.activations.direct import BLOCK, DirectWriter, aligned_empty

PIECE = 4 * BLOCK  # small pieces, so that runs span several


def _runs(rng: np.random.Generator, size: int) -> list[tuple[int, bytes]]:
    """(position, bytes) runs inside a ``size``-byte file: block-aligned and not, shorter than
    a block, one block inside, several pieces long, touching the end."""
    runs = [(0, BLOCK), (BLOCK + 3, 10), (2 * BLOCK - 5, 7), (7, 3 * PIECE + 11),
            (size - 100, 100), (size - 3 * BLOCK - 1, 3 * BLOCK + 1)]
    runs += [(int(p), int(n)) for p, n in zip(rng.integers(0, size // 2, 8),
                                              rng.integers(1, size // 2, 8), strict=True)]
    return [(p, rng.integers(0, 256, n, dtype=np.uint8).tobytes()) for p, n in runs]


def _direct_here(folder: Path) -> bool:
    writer = DirectWriter()
    writer.write(folder / "probe", b"x", whole=True)
    return writer.direct


@pytest.mark.parametrize("direct", [True, False])
def test_runs_written_anywhere_equal_ordinary_writes(tmp_path, direct):
    rng = np.random.default_rng(0)
    size = 6 * PIECE + 123
    start = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    ours, plain = tmp_path / "ours", tmp_path / "plain"
    ours.write_bytes(start)
    plain.write_bytes(start)
    writer = DirectWriter(direct=direct, piece=PIECE)
    for position, data in _runs(rng, size):
        writer.write(ours, data, position)
        with open(plain, "r+b") as file:
            file.seek(position)
            file.write(data)
        assert ours.read_bytes() == plain.read_bytes(), (position, len(data))
    if direct and _direct_here(tmp_path):
        assert writer.direct  # it really wrote past the page cache, and stayed exact


@pytest.mark.parametrize("length", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * PIECE + 5])
def test_a_whole_file_holds_exactly_its_bytes(tmp_path, length):
    data = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8)
    path = tmp_path / "chunk"
    path.write_bytes(b"\xff" * (4 * PIECE))  # longer than the new contents: truncated
    DirectWriter(piece=PIECE).write(path, data, whole=True)
    assert path.read_bytes() == data.tobytes()
    DirectWriter(piece=PIECE).write(tmp_path / "new", data, whole=True)  # created
    assert (tmp_path / "new").read_bytes() == data.tobytes()


@pytest.mark.parametrize(("length", "position"), [(3 * PIECE, 0), (3 * PIECE + 5, 0),
                                                 (2 * BLOCK + 7, BLOCK), (2 * BLOCK, 5)])
def test_aligned_memory_is_written_uncopied_with_the_same_bytes(tmp_path, length, position):
    tensor = aligned_empty((length // 4 + 1,))
    data = tensor.numpy().view(np.uint8)[:length]
    data[:] = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8)
    assert data.ctypes.data % BLOCK == 0 and tensor.dtype.is_floating_point
    start = np.random.default_rng(1).integers(0, 256, 4 * PIECE, dtype=np.uint8).tobytes()
    path = tmp_path / "file"
    path.write_bytes(start)
    writer = DirectWriter(piece=PIECE)
    writer.write(path, data, position)
    expected = bytearray(start)
    expected[position:position + length] = data.tobytes()
    assert path.read_bytes() == bytes(expected)
    writer.write(tmp_path / "whole", data, whole=True)
    assert (tmp_path / "whole").read_bytes() == data.tobytes()
    if _direct_here(tmp_path) and position % BLOCK == 0:
        # whole blocks went from the array itself: the copy buffer only for a partial tail
        assert (writer._buffer is None) == (length % BLOCK == 0)


def test_a_file_system_that_refuses_o_direct_gets_ordinary_writes(tmp_path, monkeypatch):
    # no file system here refuses O_DIRECT (tmpfs takes it since Linux 6.6): refuse it as
    # older tmpfs and some network file systems do, with EINVAL at open
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this system: ordinary writes only")
    real_open = os.open

    def refusing_open(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    path = tmp_path / "chunk"
    writer = DirectWriter()
    writer.write(path, b"abc" * 5000, whole=True)
    writer.write(path, b"XY", 4097)
    expected = bytearray(b"abc" * 5000)
    expected[4097:4099] = b"XY"
    assert path.read_bytes() == bytes(expected) and not writer.direct


def test_a_disk_error_is_raised_not_swallowed(tmp_path):
    with pytest.raises(FileNotFoundError):
        DirectWriter().write(tmp_path / "missing" / "chunk", b"x" * 10, whole=True)
    with pytest.raises(ValueError, match="multiple of 4096"):
        DirectWriter(piece=1000)
