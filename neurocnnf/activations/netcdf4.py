"""NetCDF-4 files made with h5py alone: an extraction's new file without xarray and h5netcdf.

A NetCDF-4 file is an HDF5 file with conventions ("NetCDF-4 format", Unidata): each dimension
is an HDF5 dimension scale (a coordinate variable of the same name, or an empty placeholder
dataset named as the dimension), every variable's axes are attached to their scales, and
attributes record the dimension ids (``_Netcdf4Dimid``, ``_Netcdf4Coordinates``) and fill
values (``_FillValue``). A new extraction file holds coordinates, attributes and empty data
variables; written through ``xarray.to_netcdf`` and h5netcdf, whose bookkeeping looks the
file's objects up again for every variable it adds, it took as long as a batch of the pass
(``benchmarks/README.md``, "Storage overhead"). This module writes the same objects, in the
same order and with the same attributes, in one pass. Coordinates of other dtypes than numbers
and strings, and attributes other than strings and numbers, are left to xarray
(:func:`writable`). Reading stays with xarray and h5netcdf.
"""

from __future__ import annotations

from numbers import Number
from pathlib import Path

import numpy as np
import xarray as xr

KINDS = "iufU"  # numpy dtype kinds written here: signed and unsigned integers, floats, str
PLACEHOLDER = b"This is a netCDF dimension but not a netCDF variable."  # a scale's NAME


def writable(dataset: xr.Dataset) -> bool:
    """Whether every coordinate and attribute of ``dataset`` has a type this module writes:
    coordinates of numbers or strings with at least one dimension and no attributes or
    encoding of their own, attributes strings or numbers."""
    return (all(coord.dtype.kind in KINDS and coord.ndim and not coord.attrs
                and not coord.encoding for coord in dataset.coords.values())
            and all(isinstance(value, str | Number) and not isinstance(value, bool)
                    for value in dataset.attrs.values()))


def create(path: Path, dataset: xr.Dataset, variables: dict[str, tuple], block: int) -> None:
    """A NetCDF-4 file at ``path`` of ``dataset``'s coordinates and attributes, as
    ``dataset.to_netcdf(path, engine="h5netcdf")`` writes them, and of empty ``variables``
    (name -> (dims, dtype)): float, NaN fill value, each one contiguous block allocated at its
    full size on a ``block`` boundary, never filled (every value is written before the file is
    finished). Each data variable's ``coordinates`` attribute names the non-index
    coordinates in ``dataset``'s order (the file's, as xarray writes it, sorted)."""
    import h5py

    dims = _dimension_ids(dataset, variables)
    sizes = dict(dataset.sizes)
    others = [str(name) for name in dataset.coords if name not in dataset.dims]
    with h5py.File(path, "w", track_order=True, alignment_threshold=block,
                   alignment_interval=block) as file:
        for name, value in dataset.attrs.items():
            file.attrs[name] = value if isinstance(value, str) else np.atleast_1d(value)
        if others:
            file.attrs["coordinates"] = " ".join(sorted(others))
        scales = {dim: _placeholder(file, dim, sizes[dim], dimid)
                  for dim, dimid in dims.items() if dim not in dataset.coords}
        for name, coord in dataset.coords.items():
            values = coord.values
            string = values.dtype.kind == "U"
            dtype = h5py.string_dtype() if string else values.dtype
            fill = np.nan if values.dtype.kind == "f" else None
            item = file.create_dataset(name, values.shape, dtype=dtype, fillvalue=fill,
                                       track_order=True)
            if name in dataset.dims:
                item.attrs["_Netcdf4Dimid"] = np.array(dims[name], dtype=np.int32)
                item.make_scale(name)
                item.attrs["_Netcdf4Coordinates"] = np.array([dims[name]], dtype=np.int32)
                if fill is not None:
                    item.attrs["_FillValue"] = np.array([fill], dtype=values.dtype)
                scales[name] = item
            else:
                _attach(item, coord.dims, scales, dims, fill, values.dtype)
            item[...] = values.astype(object) if string else values
        text = " ".join(others)
        for name, (var_dims, dtype) in variables.items():
            shape = tuple(sizes[dim] for dim in var_dims)
            item = file.create_dataset(name, shape, dtype=dtype, fillvalue=np.nan,
                                       fill_time="never", track_order=True)
            _attach(item, var_dims, scales, dims, np.nan, np.dtype(dtype))
            item.attrs["coordinates"] = text
            item[-1:] = np.nan  # allocates the block (the last row is written again later)
        properties = _properties()
        file.attrs["_NCProperties"] = np.array(properties, dtype=h5py.string_dtype(
            "ascii", len(properties)))


def _dimension_ids(dataset: xr.Dataset, variables: dict[str, tuple]) -> dict[str, int]:
    """Each dimension's NetCDF id: in the order the coordinates, then the data variables,
    first use it (as xarray declares them)."""
    ids: dict[str, int] = {}
    for dims in [coord.dims for coord in dataset.coords.values()] + [
            dims for dims, _ in variables.values()]:
        for dim in dims:
            ids.setdefault(dim, len(ids))
    return ids


def _placeholder(file, dim: str, size: int, dimid: int):
    """The empty scale of a dimension without a coordinate variable."""
    item = file.create_dataset(dim, (size,), dtype=">f4", track_order=True)
    item.attrs["_Netcdf4Dimid"] = np.array(dimid, dtype=np.int32)
    item.make_scale(PLACEHOLDER + f"{size:10}".encode("ascii"))
    return item


def _attach(item, dims: tuple[str, ...], scales: dict, ids: dict[str, int],
            fill: float | None, dtype: np.dtype) -> None:
    """Attach ``item``'s axes to their dimensions' scales and record its dimension ids and
    fill value, as h5netcdf does for a new variable."""
    for axis, dim in enumerate(dims):
        item.dims[axis].attach_scale(scales[dim])
    if dims:
        item.attrs["_Netcdf4Coordinates"] = np.array([ids[d] for d in dims], dtype=np.int32)
        item.attrs["_Netcdf4Dimid"] = np.array(ids[dims[0]], dtype=np.int32)
    if fill is not None:
        item.attrs["_FillValue"] = np.array([fill], dtype=dtype)


def _properties() -> str:
    """``_NCProperties``: the format version and what wrote the file."""
    import h5py

    from neurocnnf.version import __version__

    return (f"version=2,neurocnnf={__version__},hdf5={h5py.version.hdf5_version},"
            f"h5py={h5py.__version__}")
