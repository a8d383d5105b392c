"""Zarr format 2 stores made by hand (neurocnnf.activations.zarr2) read as the ones xarray and
the zarr library make: the same coordinates, attributes, array metadata and consolidated
metadata."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import xarray as xr

from neurocnnf.activations import zarr2
from neurocnnf.activations.store import _create_zarr

zarr = pytest.importorskip("zarr")
FORMAT_2 = {"zarr_format": 2} if int(zarr.__version__.split(".")[0]) >= 3 else {}


def _skeleton(**extra) -> xr.Dataset:
    coords = {"iteration": ("iteration", np.arange(3)),
              "stimulus_id": ("presentation", np.array(["a", "bb", "ccc", "d"])),
              "level": ("presentation", np.array([0.5, np.nan, 2.0, -1.0])),
              "source_index": ("presentation", np.array([3, 1, 2, 0], dtype=np.uint16)),
              "time_bin_start": ("iteration", np.array([70.0, 110.0, 150.0])),
              "grid": (("row", "col"), np.arange(6, dtype=np.int32).reshape(2, 3))}
    coords.update(extra)
    return xr.Dataset(coords=coords, attrs={"eta": float("nan"), "iterations": 2, "model": "m",
                                            "scale": np.float64(0.25)})


def _open(path) -> xr.Dataset:
    return xr.open_zarr(path, consolidated=False).load()


def test_a_hand_made_group_opens_as_the_one_xarray_writes(tmp_path):
    skeleton = _skeleton()
    assert zarr2.writable(skeleton)
    zarr2.create_group(tmp_path / "ours.zarr", skeleton)
    skeleton.to_zarr(tmp_path / "xarray.zarr", mode="w", consolidated=False, **FORMAT_2)
    ours, theirs = _open(tmp_path / "ours.zarr"), _open(tmp_path / "xarray.zarr")
    xr.testing.assert_identical(ours, theirs)
    assert np.isnan(ours.attrs["eta"]) and ours.attrs["scale"] == 0.25
    ours_names, their_names = (
        set(json.loads((tmp_path / f"{name}.zarr" / ".zattrs").read_text())["coordinates"].split())
        for name in ("ours", "xarray"))  # listed in one order or another by xarray's versions
    assert ours_names == their_names


def test_an_empty_array_has_the_zarr_library_s_metadata_and_reads_as_nan(tmp_path):
    dims = {"_ARRAY_DIMENSIONS": ["a", "b"]}
    zarr2.create_array(tmp_path / "ours", (5, 3), (2, 3), np.float32, dims)
    group = zarr.open_group(str(tmp_path / "lib"), mode="w", **FORMAT_2)
    options = dict(shape=(5, 3), chunks=(2, 3), dtype="float32", fill_value=np.nan)
    if hasattr(group, "create_array"):
        group.create_array("x", compressors=None, attributes=dims, **options)
    else:
        group.create_dataset("x", compressor=None, **options).attrs.update(dims)
    ours = json.loads((tmp_path / "ours" / ".zarray").read_text())
    theirs = json.loads((tmp_path / "lib" / "x" / ".zarray").read_text())
    assert ours == {"dimension_separator": ".", **theirs}  # zarr 2 leaves the default out
    values = zarr.open_array(str(tmp_path / "ours"), mode="r")[:]
    assert values.shape == (5, 3) and values.dtype == np.float32 and np.isnan(values).all()


def test_consolidated_metadata_equals_the_zarr_library_s(tmp_path):
    store = tmp_path / "a.zarr"
    _create_zarr(store, _skeleton(), {"conv1": (("presentation", "iteration"), np.float32)}, 2)
    shutil.copytree(store, tmp_path / "b.zarr")
    zarr2.consolidate(store)
    zarr.consolidate_metadata(str(tmp_path / "b.zarr"))
    ours, theirs = (json.loads((path / zarr2.METADATA).read_text())
                    for path in (store, tmp_path / "b.zarr"))
    assert ours == theirs and "conv1/.zarray" in ours["metadata"]
    opened = xr.open_zarr(store, consolidated=True)
    assert opened["conv1"].shape == (4, 3) and bool(opened["conv1"].isnull().all())


def test_other_coordinate_dtypes_go_through_xarray(tmp_path):
    days = np.array(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"], dtype="M8[ns]")
    skeleton = _skeleton(shown=("presentation", days), kept=("presentation", np.ones(4, bool)))
    assert not zarr2.writable(skeleton)
    _create_zarr(tmp_path / "a.zarr", skeleton, {}, 2)
    skeleton.to_zarr(tmp_path / "b.zarr", mode="w", consolidated=False, **FORMAT_2)
    xr.testing.assert_identical(_open(tmp_path / "a.zarr"), _open(tmp_path / "b.zarr"))
