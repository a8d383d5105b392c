"""Activation stores: NetCDF (h5netcdf) and Zarr, written batch by batch, and their reader.

A store is written under ``<path>.partial`` and renamed to ``<path>`` when complete, so a
finished path is always a whole file. The presentations written so far (NetCDF: the attribute
``neurocnnf_done``; Zarr: the appended length) are where an interrupted extraction resumes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

DONE = "neurocnnf_done"
FINGERPRINT = "neurocnnf_fingerprint"


class StoreError(ValueError):
    """An activation store that cannot be resumed or read."""


def store_format(path: Path) -> str:
    if path.suffix in (".nc", ".h5", ".netcdf"):
        return "netcdf"
    if path.suffix == ".zarr":
        return "zarr"
    raise StoreError(f"{path}: use a .nc (NetCDF) or .zarr path")


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class NetCDFWriter:
    """Coordinates written by xarray, then data variables filled slice by slice (h5netcdf)."""

    def __init__(self, path: Path, skeleton: xr.Dataset, variables: dict[str, tuple],
                 chunk: int) -> None:
        import h5netcdf

        self.path, self.partial = path, partial_path(path)
        fingerprint = skeleton.attrs[FINGERPRINT]
        if self.partial.exists() and _readable_fingerprint(self.partial) == fingerprint:
            self.file = h5netcdf.File(self.partial, "a")
        else:
            _remove(self.partial)
            skeleton.attrs[DONE] = 0
            skeleton.to_netcdf(self.partial, engine="h5netcdf")
            self.file = h5netcdf.File(self.partial, "a")
            coordinates = " ".join(str(c) for c in skeleton.coords if c not in skeleton.dims)
            for name, (dims, dtype) in variables.items():
                shape = tuple(self.file.dimensions[d].size for d in dims)
                chunks = (min(chunk, shape[0]),) + shape[1:]
                variable = self.file.create_variable(name, dims, dtype=dtype, chunks=chunks,
                                                     fillvalue=np.nan)
                variable.attrs["coordinates"] = coordinates
        self.done = int(self.file.attrs[DONE])

    def write(self, start: int, arrays: dict[str, np.ndarray]) -> None:
        stop = start + len(next(iter(arrays.values())))
        for name, values in arrays.items():
            self.file.variables[name][start:stop] = values
        self.file.attrs[DONE] = stop
        self.file.flush()
        self.done = stop

    def close(self, complete: bool) -> None:
        self.file.close()
        if complete:
            _remove(self.path)
            os.replace(self.partial, self.path)


class ZarrWriter:
    """The first batch creates the store (coords included); later batches are appended."""

    def __init__(self, path: Path, skeleton: xr.Dataset, variables: dict[str, tuple],
                 chunk: int) -> None:
        self.path, self.partial, self.skeleton = path, partial_path(path), skeleton
        self.variables, self.chunk = variables, chunk
        self.done = 0
        if self.partial.exists():
            try:
                existing = xr.open_zarr(self.partial)
            except Exception:  # an unreadable half-written store: start over
                existing = None
            if existing is not None and existing.attrs.get(FINGERPRINT) == \
                    skeleton.attrs[FINGERPRINT]:
                self.done = existing.sizes["presentation"]
            else:
                _remove(self.partial)

    def write(self, start: int, arrays: dict[str, np.ndarray]) -> None:
        stop = start + len(next(iter(arrays.values())))
        part = self.skeleton.isel(presentation=slice(start, stop))
        part = part.assign({name: (self.variables[name][0], values)
                            for name, values in arrays.items()})
        if start == 0:
            encoding = {name: {"chunks": (self.chunk,) + values.shape[1:]}
                        for name, values in arrays.items()}
            part.to_zarr(self.partial, mode="w", encoding=encoding, **_zarr_options())
        else:
            part.drop_vars([c for c in part.coords if "presentation" not in part[c].dims]) \
                .to_zarr(self.partial, append_dim="presentation", **_zarr_options())
        self.done = stop

    def close(self, complete: bool) -> None:
        if complete:
            _remove(self.path)
            os.replace(self.partial, self.path)


def _zarr_options() -> dict:
    """Write Zarr format 2 (readable by old and new zarr/xarray alike)."""
    import zarr

    return {"zarr_format": 2} if int(zarr.__version__.split(".")[0]) >= 3 else {}


def make_writer(path: Path, skeleton: xr.Dataset, variables: dict[str, tuple], chunk: int):
    writer = NetCDFWriter if store_format(path) == "netcdf" else ZarrWriter
    return writer(path, skeleton, variables, chunk)


def _readable_fingerprint(path: Path) -> str | None:
    try:
        with xr.open_dataset(path, engine="h5netcdf") as existing:
            return existing.attrs.get(FINGERPRINT)
    except Exception:  # a file killed mid-write may not open: it is rewritten
        return None


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
