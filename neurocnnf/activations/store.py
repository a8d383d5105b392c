"""Activation stores: NetCDF (h5netcdf) or Zarr, written through a resumable partial store.

Batches are written to ``<path>.partial``: for Zarr, a Zarr store sized for every presentation
with one chunk per batch; for NetCDF, a folder holding the NetCDF file, created whole at the
start (metadata written by ``netcdf4``, each variable one contiguous block) so that a batch is
written as bytes at its offset and a kill never leaves HDF5's metadata half-written. After each
batch is on disk, ``neurocnnf-progress.json`` there is replaced (atomically) with the count of
presentations done and the settings of the extraction (model, stimuli, layers, ...). A kill at
any point loses at most the batch in flight: a rerun with the same settings continues at
``done`` (rewriting a batch never touches another); a rerun with other settings is refused and
the partial store left as it is. When every batch is written, the store (Zarr) or the file
(NetCDF) is renamed to ``<path>``, so a finished path is always whole and nothing is copied.

A Zarr store can also be written in shards (:class:`Shard`): one process creates the partial
store (every array full-size), shard processes write their chunk-aligned regions of it, each
recording its progress in a file of its own, and the last step renames the store once every
presentation is written (nothing is copied).

A layer computed once (an encoder tap: the same values at every iteration, which
``trace_arrays`` gives as one block repeated along the iteration axis) is chunked by one
iteration in Zarr: its first iteration's chunk file is written and the others are hard links
of it, so its bytes are written once (the file system stores them once; where it has no hard
links, each file is written). A feedback variable, NaN at iteration 0 (no feedback has arrived
yet), is chunked by one iteration too, and a chunk that is all NaN, the arrays' fill value, is
not written: readers fill a missing chunk with it (as the zarr library leaves such chunks out,
``write_empty_chunks=False``).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import queue
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from neurocnnf.activations import netcdf4, zarr2
from neurocnnf.activations.direct import BLOCK, DirectWriter, aligned_empty
from neurocnnf.errors import NeurocnnfError
from neurocnnf.io import atomic_write

FINGERPRINT = "neurocnnf_fingerprint"
PROGRESS = "neurocnnf-progress.json"
EXTRAS = "neurocnnf-extras.npz"
NETCDF = "neurocnnf-data.nc"  # the NetCDF file inside a NetCDF extraction's partial folder
RESTART = "extract --restart-if-changed"
SHARD_PROGRESS = "neurocnnf-progress-shard-{index}-of-{count}.json"
# errno values of a file system that makes no hard links (or not this many)
NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


class StoreError(NeurocnnfError, ValueError):
    """An activation store that cannot be written, resumed or read."""


def store_format(path: Path) -> str:
    if path.suffix in (".nc", ".h5", ".netcdf"):
        return "netcdf"
    if path.suffix == ".zarr":
        return "zarr"
    raise StoreError(f"{path}: use a .nc (NetCDF) or .zarr path")


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``: of a store of C chunks, the chunks
    ``C * index // count`` to ``C * (index + 1) // count`` (so shards never share a chunk)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: the index runs from 0 to "
                             f"{self.count - 1} (count >= 1)")

    def rows(self, n: int, chunk: int) -> range:
        """The presentations of this shard in a store of ``n`` chunked by ``chunk``."""
        chunks = -(-n // chunk)
        start, stop = (chunks * i // self.count * chunk for i in (self.index, self.index + 1))
        return range(min(start, n), min(stop, n))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard | str:
    """--shard as 'init', 'merge' or a Shard from 'I/N' (I from 0 to N - 1)."""
    if text in ("init", "merge"):
        return text
    index, sep, count = text.partition("/")
    try:
        return Shard(int(index), int(count))
    except ValueError as error:
        detail = f" ({error})" if sep and index.isdigit() and count.isdigit() else ""
        raise ValueError(f"--shard {text!r} must be init, merge or I/N with 0 <= I < N"
                         f"{detail}") from None


class PartialStore:
    """``<path>.partial`` of one extraction: open an existing one (``resume``) or ``create`` it,
    ``write`` batches, then ``finish`` into ``<path>``.

    ``region``: the presentations this writer writes (all of them, or a shard's); ``done``:
    where it continues (``region.stop`` when finished); ``chunk``: presentations per batch (fixed
    at creation); ``extras``: arrays saved with the store at creation (e.g. the reduction maps).
    Disk errors (full disk, quota, file size limit) raise StoreError; the store stays resumable.
    """

    def __init__(self, path: Path, settings: dict, done: int, chunk: int,
                 extras: dict[str, np.ndarray], shard: Shard | None = None) -> None:
        self.path, self.partial = path, partial_path(path)
        self.settings, self.done, self.chunk, self.extras = settings, done, chunk, extras
        n = settings["n"]
        self.region = range(n) if shard is None else shard.rows(n, chunk)
        self.progress = PROGRESS if shard is None else SHARD_PROGRESS.format(
            index=shard.index, count=shard.count)
        self._layouts: dict[str, tuple] = {}  # per variable: Zarr chunk layout | NetCDF offset
        self._bytes = DirectWriter()  # the batches' bytes, past the page cache where it can
        self._spread: dict[str, np.ndarray] = {}  # NetCDF: per repeated variable, its rows

    @classmethod
    def resume(cls, path: Path, settings: dict, restart_if_changed: bool = False,
               shard: Shard | None = None) -> PartialStore | None:
        """The partial store of ``path`` if there is one (None otherwise), continuing where
        ``shard`` (default: the whole set) stopped; StoreError if it was made with other
        settings or cannot be resumed (it is left untouched), unless ``restart_if_changed``:
        then it is deleted (None)."""
        partial = partial_path(path)
        if not partial.exists():
            return None
        try:
            return cls._resume(path, settings, shard)
        except StoreError:
            if not restart_if_changed:
                raise
            _remove(partial)
            return None

    @classmethod
    def _resume(cls, path: Path, settings: dict, shard: Shard | None) -> PartialStore:
        partial = partial_path(path)
        try:
            progress = json.loads((partial / PROGRESS).read_text())
            done, chunk, made_with = progress["done"], progress["chunk"], progress["settings"]
            if shard is not None:
                region = shard.rows(progress["settings"]["n"], chunk)
                own = partial / SHARD_PROGRESS.format(index=shard.index, count=shard.count)
                done = json.loads(own.read_text())["done"] if own.exists() else region.start
            with np.load(partial / EXTRAS) as extras:
                arrays = dict(extras)
            if store_format(path) == "netcdf" and not (partial / NETCDF).is_file():
                raise FileNotFoundError(f"no {NETCDF}")  # (made by an older version)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StoreError(f"{partial} is not a resumable extraction ({error}); delete it to "
                             f"start over ({RESTART} does)") from None
        settings = _normalized(settings)
        changed = _differences(made_with, settings)
        if changed:
            raise StoreError(f"{partial} holds an unfinished extraction made from other inputs "
                             f"({changed}); it is left as it is: run again with the inputs it "
                             f"was made from, or delete it to start over ({RESTART} does)")
        return cls(path, settings, done, chunk, arrays, shard)

    @classmethod
    def create(cls, path: Path, skeleton: xr.Dataset, variables: dict[str, tuple], chunk: int,
               settings: dict, extras: dict[str, np.ndarray],
               by_iteration: frozenset[str] = frozenset()) -> PartialStore:
        """A new partial store: coords and attrs of ``skeleton``, empty float ``variables``
        (name -> (dims, dtype); Zarr: NaN, chunked by ``chunk`` presentations, and those in
        ``by_iteration`` by one iteration too: a layer the same at every iteration, stored
        once, or one NaN at an iteration, not stored there), and ``extras``."""
        store = cls(path, _normalized(settings), 0, chunk, extras)
        tmp = store.partial.with_name(store.partial.name + ".tmp")
        with store._disk_errors(tmp):
            _remove(tmp)  # left by a run killed while creating it
            if store_format(path) == "zarr":
                _create_zarr(tmp, skeleton, variables, chunk, by_iteration)
            else:
                tmp.mkdir()
        if store_format(path) == "netcdf":
            import h5py  # noqa: F401 - once, here: the child making the file inherits it, and
            # the writer reads the variables' offsets with it
            error = in_child(lambda: _create_netcdf(tmp / NETCDF, skeleton, variables))
            if error is not None:
                _remove(tmp)
                raise store._write_error(tmp, error)
        with store._disk_errors(tmp):
            np.savez(tmp / EXTRAS, **extras)
            store._save_progress(tmp, 0)
            os.replace(tmp, store.partial)
        return store

    def write(self, start: int, arrays: dict[str, np.ndarray]) -> None:
        """Write presentations ``start:start + len`` (``start`` = ``done``, one chunk) of every
        variable, then record them as done."""
        stop = start + len(next(iter(arrays.values())))
        if store_format(self.path) == "netcdf":
            with self._disk_errors(self.partial):
                _write_rows(self._bytes, self.partial / NETCDF, self._offsets(), start, arrays,
                            self._spread)
                self._save_progress(self.partial, stop)
            self.done = stop
            return
        with self._disk_errors(self.partial):
            group = None
            for name, values in arrays.items():
                layout = self._raw_layout(name)
                if layout is not None:
                    _write_raw_chunk(self._bytes, self.partial / name, start // self.chunk,
                                     values, *layout)
                else:  # a layout we do not write by hand: through the zarr library
                    import zarr

                    group = group or zarr.open_group(str(self.partial), mode="r+")
                    group[name][start:stop] = values
            self._save_progress(self.partial, stop)
        self.done = stop

    def missing(self) -> list[range]:
        """The presentations no writer has recorded as done: neither the whole-set progress
        nor any shard's (empty when the store is complete)."""
        written = np.zeros(self.settings["n"], dtype=bool)
        for path in [self.partial / PROGRESS, *self.partial.glob(SHARD_PROGRESS.format(
                index="*", count="*"))]:
            progress = json.loads(path.read_text())
            written[progress.get("start", 0):progress["done"]] = True
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ~written, [0]]).astype(np.int8)))
        return [range(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True)]

    def _offsets(self) -> dict[str, tuple[int, np.dtype]]:
        """(byte offset, dtype) of each variable's block in the partial NetCDF file."""
        if not self._layouts:
            self._layouts = _netcdf_offsets(self.partial / NETCDF)
        return self._layouts

    def _raw_layout(self, name: str) -> tuple[int, np.dtype, str] | None:
        """(chunk rows, dtype, key separator) of variable ``name`` if its chunks are plain
        C-order bytes (Zarr format 2, no compressor, no filters), else None."""
        if name not in self._layouts:
            self._layouts[name] = _raw_layout(self.partial / name)
        return self._layouts[name]

    def finish(self) -> Path:
        """Rename the complete partial store (Zarr) or its file (NetCDF) to ``path``;
        StoreError naming the presentations that no writer (a shard) has written yet."""
        missing = self.missing()
        if missing:
            gaps = ", ".join(f"{r.start}-{r.stop - 1}" for r in missing[:5])
            raise StoreError(f"{self.partial} is not complete: presentations {gaps} of "
                             f"{self.settings['n']} are not written yet; run the shards that "
                             f"write them (--shard I/N), then finish again")
        if store_format(self.path) == "zarr":
            with self._disk_errors(self.path):
                zarr2.consolidate(self.partial)
                _remove(self.path)
                os.replace(self.partial, self.path)
            for name in (PROGRESS, EXTRAS):
                (self.path / name).unlink(missing_ok=True)
            for name in self.path.glob(SHARD_PROGRESS.format(index="*", count="*")):
                name.unlink()
            return self.path
        with self._disk_errors(self.path):
            _remove(self.path)
            os.replace(self.partial / NETCDF, self.path)
        _remove(self.partial)
        return self.path

    def _save_progress(self, folder: Path, done: int) -> None:
        progress = {"done": done, "chunk": self.chunk, "settings": self.settings}
        if self.progress != PROGRESS:
            progress.update(start=self.region.start, stop=self.region.stop)
        atomic_write(folder / self.progress,
                     lambda tmp: Path(tmp).write_text(json.dumps(progress)))

    @contextmanager
    def _disk_errors(self, target: Path):
        """OSError while writing (full disk, quota, size limit) -> one StoreError line."""
        try:
            yield
        except OSError as error:
            raise self._write_error(target, error.strerror or str(error)) from None

    def _write_error(self, target: Path, reason: str) -> StoreError:
        return StoreError(
            f"cannot write {target}: {reason}; {self.done} of {self.settings.get('n', '?')} "
            f"presentations are saved in {self.partial}: free space (or fix the cause) and run "
            "the same command again to resume")


def in_child(work: Callable[[], None]) -> str | None:
    """Run ``work`` in a forked child; None if it succeeded, else its error (one line).

    HDF5 cannot recover from a failed write (a full disk): the process that made it crashes at
    exit. In a child that crash stays there. The child dies with its parent (Linux), so a
    killed extraction leaves no writer behind.
    """
    read, write = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child never returns
        os.close(read)
        try:
            if sys.platform.startswith("linux"):
                ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before that
                os._exit(1)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # HDF5 reports its failures at length
            work()
            os._exit(0)
        except BaseException as error:
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            os.write(write, reason.splitlines()[0].split(" (")[0][:500].encode())
            os._exit(1)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        reason = pipe.read().decode(errors="replace")
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if status == 0:
        return None
    return reason or f"the writer ended with status {status}"


def _create_zarr(folder: Path, skeleton: xr.Dataset, variables: dict[str, tuple], chunk: int,
                 by_iteration: frozenset[str] = frozenset()) -> None:
    """A Zarr store (format 2) of ``skeleton``'s coords and attrs (``zarr2``; through xarray
    where a coordinate has a dtype that module leaves to it) and NaN-filled ``variables``
    (name -> (dims, dtype)), uncompressed, chunked by ``chunk`` presentations (and by one
    iteration for the variables in ``by_iteration``)."""
    if zarr2.writable(skeleton):
        zarr2.create_group(folder, skeleton)
    else:
        skeleton.to_zarr(folder, mode="w", consolidated=False, **_zarr_options())
    coordinates = _coordinates(skeleton)
    for name, (dims, dtype) in variables.items():
        shape = tuple(skeleton.sizes[d] for d in dims)
        chunks = (chunk, 1) + shape[2:] if name in by_iteration else (chunk,) + shape[1:]
        zarr2.create_array(folder / name, shape, chunks, dtype,
                           {"_ARRAY_DIMENSIONS": list(dims), "coordinates": coordinates})


def _coordinates(skeleton: xr.Dataset) -> str:
    """The ``coordinates`` attribute of every data variable: the non-index coordinates."""
    return " ".join(str(c) for c in skeleton.coords if c not in skeleton.dims)


def _create_netcdf(path: Path, skeleton: xr.Dataset, variables: dict[str, tuple]) -> None:
    """The NetCDF file of an extraction, whole: coordinates and attrs of ``skeleton`` (as
    ``to_netcdf`` writes them: ``netcdf4``, or xarray for a coordinate of another dtype than
    numbers and strings), each variable (name -> (dims, dtype)) a contiguous block allocated at
    its full size, starting on a ``BLOCK`` boundary, and never filled (every presentation is
    written before the file is finished)."""
    if netcdf4.writable(skeleton):
        netcdf4.create(path, skeleton, variables, BLOCK)
    else:
        _create_netcdf_with_xarray(path, skeleton, variables)


def _create_netcdf_with_xarray(path: Path, skeleton: xr.Dataset, variables: dict[str, tuple]
                               ) -> None:
    """``_create_netcdf`` through xarray and h5netcdf (any coordinate dtype xarray writes)."""
    import h5netcdf

    skeleton.to_netcdf(path, engine="h5netcdf")
    coordinates = _coordinates(skeleton)
    # blocks start on block boundaries: a batch whose rows fill whole blocks is written
    # straight from its array (DirectWriter)
    with h5netcdf.File(path, "a", alignment_threshold=BLOCK, alignment_interval=BLOCK) as file:
        for name, (dims, dtype) in variables.items():
            variable = file.create_variable(name, dims, dtype=dtype, fillvalue=np.nan,
                                            fill_time="never")
            variable.attrs["coordinates"] = coordinates
            variable[-1:] = np.nan  # allocates the block (the last row is written again later)


def _netcdf_offsets(path: Path) -> dict[str, tuple[int, np.dtype]]:
    """(byte offset, dtype) of each data variable's contiguous block in ``path``."""
    import h5py

    with h5py.File(path, "r") as file:
        return {name: (item.id.get_offset(), item.dtype) for name, item in file.items()
                if isinstance(item, h5py.Dataset) and item.id.get_offset() is not None}


def _write_rows(writer: DirectWriter, path: Path, offsets: dict[str, tuple[int, np.dtype]],
                start: int, arrays: dict[str, np.ndarray], spread: dict[str, np.ndarray]
                ) -> None:
    """Write presentations ``start:start + len`` of each variable into its block of ``path``
    (C order: a presentation's values are one run of bytes)."""
    for name, values in arrays.items():
        offset, dtype = offsets[name]
        if repeated_block(values) is not None and dtype == np.float32:
            data = spread[name] = _spread(values, spread.get(name))
        else:
            data = np.ascontiguousarray(values, dtype=dtype)
        writer.write(path, data, offset + start * (data.nbytes // max(len(values), 1)))


def _spread(values: np.ndarray, buffer: np.ndarray | None) -> np.ndarray:
    """A float32 block repeated along the iteration axis as one C-order array on a block
    boundary (NetCDF stores every iteration's copy; written from its own memory): in
    ``buffer``, the previous batch's, where it has the shape (a fresh array of that size is a
    fresh mapping, whose pages the kernel zero-fills first)."""
    if buffer is None or buffer.shape != values.shape:
        buffer = aligned_empty(values.shape).numpy()
    np.copyto(buffer, values)
    return buffer


def _raw_layout(folder: Path) -> tuple[int, np.dtype, str, int] | None:
    """(chunk rows, dtype, key separator, chunk files per batch) of the Zarr array in
    ``folder`` if each chunk file is the chunk's C-order bytes (format 2, no compressor, no
    filters) and a chunk spans every axis but the first (one file per batch) or every axis but
    the first two, of which it holds one iteration (one file per iteration), else None."""
    try:
        meta = json.loads((folder / ".zarray").read_text())
    except (OSError, ValueError):
        return None
    chunks, shape = meta.get("chunks", []), meta.get("shape", [])
    plain = (meta.get("zarr_format") == 2 and meta.get("compressor") is None
             and not meta.get("filters") and meta.get("order") == "C")
    if plain and chunks[1:] == shape[1:]:
        files = 1
    elif plain and len(shape) > 2 and chunks[1] == 1 and chunks[2:] == shape[2:]:
        files = shape[1]
    else:
        return None
    return chunks[0], np.dtype(meta["dtype"]), meta.get("dimension_separator", "."), files


def _chunk_path(folder: Path, index: int, ndim: int, separator: str, iteration: int = 0
                ) -> Path:
    """The file of chunk ``index`` along the first axis and ``iteration`` along the second
    (a chunk spans the other axes)."""
    return folder / separator.join([str(index), str(iteration)][:ndim] + ["0"] * (ndim - 2))


def _write_raw_chunk(writer: DirectWriter, folder: Path, index: int, values: np.ndarray,
                     rows: int, dtype: np.dtype, separator: str, files: int = 1) -> None:
    """Write ``values`` (<= ``rows`` presentations) as chunk ``index``, one file (``files``
    = 1) or one per iteration; the files of a block repeated along the iteration axis
    (``repeated_block``) after the first are hard links of it, and a chunk whose values are
    all NaN (the fill value: iteration 0 of feedback, feedback at T = 0) has no file."""
    first = _chunk_path(folder, index, values.ndim, separator)
    if files == 1:
        _write_or_leave_out(writer, first, values, rows, dtype)
        return
    repeated = repeated_block(values) is not None
    for iteration in range(files):
        path = _chunk_path(folder, index, values.ndim, separator, iteration)
        if not (repeated and iteration and _link(first, path)):
            _write_or_leave_out(writer, path, values[:, iteration:iteration + 1], rows, dtype)


def _write_or_leave_out(writer: DirectWriter, path: Path, values: np.ndarray, rows: int,
                        dtype: np.dtype) -> None:
    """``_write_chunk_file``, or no file where every value is NaN, the fill value (a file
    left there by an earlier write of this batch is removed)."""
    if _all_nan(values):
        path.unlink(missing_ok=True)
    else:
        _write_chunk_file(writer, path, values, rows, dtype)


def _all_nan(values: np.ndarray) -> bool:
    """Whether every value is NaN: its first and last are looked at first, then all of them
    in one read (``fmax`` ignores NaN, so its reduction is NaN only when all are)."""
    if values.dtype.kind != "f":
        return False
    corners = values[(0,) * values.ndim], values[(-1,) * values.ndim]
    return bool(np.isnan(corners).all() and np.isnan(np.fmax.reduce(values, axis=None)))


def _write_chunk_file(writer: DirectWriter, path: Path, values: np.ndarray, rows: int,
                      dtype: np.dtype) -> None:
    """Write ``values`` as the chunk file ``path``; a short last batch is padded with NaN,
    the arrays' fill value, as Zarr stores edge chunks (the values written from their own
    memory, the padding after them)."""
    values = np.ascontiguousarray(values, dtype=dtype)
    writer.write(path, values, whole=True)
    if len(values) < rows:
        padding = np.full((rows - len(values),) + values.shape[1:], np.nan, dtype=dtype)
        writer.write(path, padding, values.nbytes)


def _link(source: Path, target: Path) -> bool:
    """Make ``target`` a hard link of ``source``, replacing a file there (a resumed batch);
    False where the file system makes no hard links (the caller writes the bytes instead)."""
    try:
        os.link(source, target)
    except FileExistsError:
        if os.path.samefile(source, target):
            return True
        os.unlink(target)
        return _link(source, target)
    except OSError as error:
        if error.errno in NO_LINKS:
            return False
        raise
    return True


def repeated_block(array: np.ndarray) -> np.ndarray | None:
    """The (B, 1, ...) block that ``array`` (B, T+1, ...) repeats along its iteration axis,
    where it is such a view (stride 0 there: ``trace_arrays`` gives a layer computed once so),
    else None."""
    if array.ndim > 2 and array.shape[1] > 1 and array.strides[1] == 0:
        return array[:, :1]
    return None


def _normalized(settings: dict) -> dict:
    """Settings as they read back from JSON (tuples as lists), for comparisons."""
    return json.loads(json.dumps(settings, sort_keys=True))


def _differences(old: dict, new: dict) -> str:
    """'key: old -> new' for short values, 'key changed' for long ones (digests)."""
    parts = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if len(repr(before)) + len(repr(after)) <= 60:
            parts.append(f"{key}: {before!r} -> {after!r}")
        else:
            parts.append(f"{key} changed")
    return "; ".join(parts)


def _zarr_options() -> dict:
    """Write Zarr format 2 (readable by old and new zarr/xarray alike)."""
    import zarr

    return {"zarr_format": 2} if int(zarr.__version__.split(".")[0]) >= 3 else {}


class BatchWriter:
    """Writes batches to a :class:`PartialStore` on a background thread, so that the next
    batch computes while this one goes to disk.

    At most ``depth`` batches wait in the queue (memory stays bounded); batches are written
    in order, each recorded as done once on disk, so a kill still loses only the batches not
    yet written. An error of the writer is raised in the caller's thread at the next ``put``
    or at the end of the ``with`` block; an error of the caller stops the writer after the
    batches already queued.
    """

    def __init__(self, store: PartialStore, depth: int = 1) -> None:
        self.store, self.error = store, None
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, name="activation-writer", daemon=True)

    def __enter__(self) -> BatchWriter:
        self.thread.start()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.queue.put(None)
        self.thread.join()
        if kind is None:
            self._raise()

    def put(self, start: int, arrays: dict[str, np.ndarray]) -> None:
        """Queue presentations ``start:start + len`` (blocks while ``depth`` batches wait)."""
        self._raise()
        self.queue.put((start, arrays))

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:  # after an error, drain the queue without writing
                try:
                    self.store.write(*item)
                except BaseException as error:  # noqa: BLE001 - re-raised in the caller
                    self.error = error

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def open_activations(path: str | os.PathLike) -> xr.Dataset:
    """Open a finished activation store (NetCDF or Zarr)."""
    path = Path(path)
    if not path.exists():
        hint = " (an unfinished extraction is at .partial: run it again to resume)" \
            if partial_path(path).exists() else ""
        raise StoreError(f"activation store {path} does not exist{hint}")
    if store_format(path) == "netcdf":
        return xr.open_dataset(path, engine="h5netcdf")
    return xr.open_zarr(path)


def layers_of(ds: xr.Dataset) -> list[str]:
    """The layer variables of an activation dataset."""
    return json.loads(ds.attrs["layers"])


def assembly(ds: xr.Dataset, layer: str, time_bins: bool = True) -> xr.DataArray:
    """One layer as a NeuroidAssembly-shaped DataArray.

    Dims (presentation, neuroid, time_bin) with coords stimulus_id and all metadata on
    presentation, neuroid_id / layer / channel / x / y on neuroid, and time_bin_start /
    time_bin_end (ms) on time_bin. ``time_bins=False`` keeps the ``iteration`` dim instead.
    """
    if layer not in ds.data_vars or "iteration" not in ds[layer].dims:
        raise StoreError(f"unknown layer {layer!r}; this dataset has {layers_of(ds)}")
    array = ds[layer]
    neuroid_dim = array.dims[2]
    suffix = neuroid_dim[len("neuroid_"):]
    rename = {neuroid_dim: "neuroid"}
    rename.update({f"{name}_{suffix}": name for name in ("neuroid_id", "channel", "x", "y")
                   if f"{name}_{suffix}" in array.coords})
    array = array.rename(rename)
    drop = [c for c in array.coords if c.startswith(("neuroid_id_", "channel_", "x_", "y_"))]
    array = array.drop_vars(drop).assign_coords(layer=("neuroid", np.repeat(layer, array.sizes[
        "neuroid"])))
    array = array.transpose("presentation", "neuroid", "iteration")
    if time_bins:
        iteration = array["iteration"].values
        array = array.rename({"iteration": "time_bin"}).drop_vars("time_bin")
        array = array.assign_coords(iteration=("time_bin", iteration))
    return array
