"""Zarr format 2 stores made by hand: an extraction's new store without the zarr library.

The format is JSON metadata beside one file per chunk ("Zarr storage specification version
2"). A new extraction store holds coordinates (each one zlib-compressed chunk: a layer's
neuroid ids are megabytes of UTF-32, a small stimulus set's data less), attributes and empty
data variables (uncompressed, one chunk per batch, NaN until written), all of which is
a few small files. Made by ``xarray.to_zarr``, with the zarr library imported for it, they
were a fixed cost as large as a batch or two of the pass (``benchmarks/README.md``, "Storage
overhead"). Coordinates of other dtypes than numbers and strings are left to xarray
(:func:`writable`). Reading stays with xarray and the zarr library.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import xarray as xr

COORDINATE_CODEC = {"id": "zlib", "level": 1}  # numcodecs' name for a zlib stream
KINDS = "iufU"  # numpy dtype kinds written here: signed and unsigned integers, floats, str
METADATA = ".zmetadata"  # consolidated metadata: every .zgroup, .zattrs and .zarray in one


def writable(dataset: xr.Dataset) -> bool:
    """Whether every coordinate of ``dataset`` has a dtype this module writes."""
    return all(coord.dtype.kind in KINDS for coord in dataset.coords.values())


def create_group(folder: Path, dataset: xr.Dataset) -> None:
    """Write ``dataset``'s coordinates and attributes as the Zarr group ``folder`` (created),
    as ``dataset.to_zarr(folder, zarr_format=2)`` would store them (each coordinate one
    chunk, compressed with ``COORDINATE_CODEC``)."""
    folder.mkdir()
    others = sorted(str(name) for name in dataset.coords if name not in dataset.dims)
    attrs = dict(dataset.attrs, coordinates=" ".join(others)) if others else dict(dataset.attrs)
    _write_json(folder / ".zgroup", {"zarr_format": 2})
    _write_json(folder / ".zattrs", attrs)
    for name, coord in dataset.coords.items():
        values = np.ascontiguousarray(coord.values)
        create_array(folder / str(name), values.shape, values.shape, values.dtype,
                     {"_ARRAY_DIMENSIONS": list(coord.dims)}, COORDINATE_CODEC)
        (folder / str(name) / ".".join(["0"] * max(values.ndim, 1))).write_bytes(
            zlib.compress(values.tobytes(), COORDINATE_CODEC["level"]))


def create_array(folder: Path, shape: tuple[int, ...], chunks: tuple[int, ...],
                 dtype: np.dtype, attrs: dict, compressor: dict | None = None) -> None:
    """A C-order array's metadata in ``folder`` (created), uncompressed unless ``compressor``
    (numcodecs' configuration); no chunk written (a missing chunk reads as the fill value:
    NaN for floats)."""
    folder.mkdir()
    dtype = np.dtype(dtype)
    _write_json(folder / ".zarray", {
        "shape": list(shape), "chunks": [max(n, 1) for n in chunks], "dtype": dtype.str,
        "fill_value": "NaN" if dtype.kind == "f" else None, "order": "C", "filters": None,
        "dimension_separator": ".", "compressor": compressor, "zarr_format": 2})
    _write_json(folder / ".zattrs", attrs)


def consolidate(folder: Path) -> None:
    """Write ``folder/.zmetadata``: the group's and each array's metadata in one file, as
    ``zarr.consolidate_metadata`` does, so that readers open the store with one read."""
    metadata = {}
    for path in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        for name in (".zgroup", ".zattrs", ".zarray"):
            if (path / name).exists():
                key = name if path == folder else f"{path.name}/{name}"
                metadata[key] = json.loads((path / name).read_text())
    _write_json(folder / METADATA, {"metadata": metadata, "zarr_consolidated_format": 1})


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, default=_plain))  # NaN as zarr writes it, bare


def _plain(value):
    """JSON for numpy scalars in attributes (their Python value)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"attribute value {value!r} of type {type(value).__name__} cannot be "
                    "written as JSON")
