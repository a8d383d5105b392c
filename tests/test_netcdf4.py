"""NetCDF-4 files made with h5py alone (neurocnnf.activations.netcdf4) hold the objects that
xarray and h5netcdf write, in the same order, with the same properties and attributes, and
read back identically."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from neurocnnf.activations import extract_dataset, netcdf4
from neurocnnf.activations.direct import BLOCK
from neurocnnf.activations.store import _create_netcdf, _create_netcdf_with_xarray
from neurocnnf.models import fmnist_small
from neurocnnf.stimuli import StimulusSet
from neurocnnf.stimuli.sets import _base_metadata

VARIABLES = {"conv": (("presentation", "iteration", "neuroid"), "f4"),
             "logits": (("presentation", "iteration", "class"), "f2"),
             "error": (("presentation", "iteration"), "f4")}


def _skeleton(**extra) -> xr.Dataset:
    coords = {"stimulus_id": ("presentation", np.array(["a", "bb", "çà文", "d"])),
              "level": ("presentation", np.array([0.5, np.nan, 2.0, -1.0])),
              "source_index": ("presentation", np.array([3, 1, 2, 0], dtype=np.uint16)),
              "iteration": ("iteration", np.arange(3)),
              "time_bin_start": ("iteration", np.array([70.0, 110.0, 150.0])),
              "neuroid_id": ("neuroid", np.array([f"conv.{i}" for i in range(300_000)])),
              "channel": ("neuroid", np.arange(300_000) // 1000),
              "class_name": ("class", np.array(["cat", "dog"])),
              "grid": (("row", "col"), np.arange(6, dtype=np.int32).reshape(2, 3))}
    coords.update(extra)
    return xr.Dataset(coords=coords, attrs={"eta": float("nan"), "iterations": 2, "model": "m",
                                            "scale": np.float32(0.25)})


def _structure(path) -> list:
    """Every object of the file in link order: name, shape, dtype, fill value, creation
    properties and attributes in order (dimension lists and references by name; the root's
    ``coordinates`` as a set: xarray's versions order it differently; ``_NCProperties`` left
    out: it names the writer)."""
    def value(file, key, raw):
        if key == "DIMENSION_LIST":
            return [[file[ref].name for ref in refs] for refs in raw]
        if key == "REFERENCE_LIST":
            return [(file[ref].name, int(axis)) for ref, axis in raw]
        if isinstance(raw, np.ndarray):  # NaN as a string: equal to itself
            return (raw.dtype.str, [x if x == x else "nan" for x in raw.ravel().tolist()])
        return (type(raw).__name__, raw)

    with h5py.File(path, "r") as file:
        root = [(key, value(file, key, file.attrs[key])) for key in file.attrs
                if key not in ("_NCProperties", "coordinates")]
        root.append(set(file.attrs["coordinates"].split()))
        objects = []
        for name, item in file.items():
            plist = item.id.get_create_plist()
            fill = item.fillvalue
            objects.append((name, item.shape, str(item.dtype), h5py.check_string_dtype(item.dtype),
                            "nan" if isinstance(fill, float) and np.isnan(fill) else repr(fill),
                            plist.get_layout(), plist.get_fill_time(), plist.get_alloc_time(),
                            plist.get_attr_creation_order(), item.is_scale,
                            [(key, value(file, key, item.attrs[key])) for key in item.attrs]))
        group = file["/"].id.get_create_plist()
        return [root, objects, group.get_link_creation_order(), group.get_attr_creation_order()]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same skeleton and variables made by h5py alone and through xarray and h5netcdf."""
    folder = tmp_path_factory.mktemp("netcdf4")
    skeleton = _skeleton()
    assert netcdf4.writable(skeleton)
    _create_netcdf(folder / "ours.nc", skeleton, VARIABLES)
    _create_netcdf_with_xarray(folder / "xarray.nc", skeleton, VARIABLES)
    return folder / "ours.nc", folder / "xarray.nc"


def test_the_file_holds_the_objects_xarray_and_h5netcdf_write(files):
    ours, theirs = (_structure(path) for path in files)
    assert ours == theirs
    with h5py.File(files[0], "r") as file:
        kind = h5py.check_string_dtype(file.attrs.get_id("_NCProperties").dtype)
        assert (kind.encoding, kind.length) == ("ascii", len(file.attrs["_NCProperties"]))
        assert file.attrs["_NCProperties"].decode().startswith("version=2,neurocnnf=")


def test_the_file_reads_back_identically_with_every_variable_written(files):
    for path in files:
        with h5py.File(path, "r+") as file:
            for name in VARIABLES:
                data = file[name]
                data[...] = np.arange(data.size, dtype=data.dtype).reshape(data.shape)
    with xr.open_dataset(files[0], engine="h5netcdf") as ours, \
            xr.open_dataset(files[1], engine="h5netcdf") as theirs:
        xr.testing.assert_identical(ours.load(), theirs.load())
        assert np.isnan(ours.attrs["eta"]) and ours.attrs["iterations"] == 2
        assert ours["conv"].encoding["dtype"] == np.float32
        assert ours["level"].isnull().sum() == 1


def test_large_variables_start_on_block_boundaries(files):
    with h5py.File(files[0], "r") as file:
        offsets = {name: file[name].id.get_offset() for name in VARIABLES}
    assert offsets["conv"] % BLOCK == 0  # 4 x 3 x 300,000 float32: past the threshold
    assert all(offset is not None for offset in offsets.values())  # allocated at creation


def test_other_coordinate_dtypes_and_attributes_are_left_to_xarray():
    assert not netcdf4.writable(_skeleton(flag=("presentation", np.array([True] * 4))))
    assert not netcdf4.writable(_skeleton().assign_attrs(done=True))
    assert not netcdf4.writable(_skeleton().assign_attrs(shape=[1, 2]))
    assert not netcdf4.writable(_skeleton(unit=((), np.float64(1.0))))
    with_units = _skeleton()
    with_units["level"].attrs["units"] = "dB"
    assert not netcdf4.writable(with_units)


def test_an_extraction_makes_its_file_here_and_reads_as_its_zarr_twin(tmp_path):
    """A real extraction's coordinates (stimulus metadata, neuroid ids, time bins) take this
    module's path (``_NCProperties`` names neurocnnf), and the finished file reads back as the
    Zarr store of the same extraction."""
    torch.manual_seed(0)
    model = fmnist_small().eval()
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    stimuli = StimulusSet("five", _base_metadata([f"s{i}" for i in range(5)]), images=images)
    options = dict(iterations=2, batch_size=2, progress=False)
    with extract_dataset(model, stimuli, tmp_path / "a.nc", **options) as ours, \
            extract_dataset(model, stimuli, tmp_path / "a.zarr", **options) as zarr_twin:
        xr.testing.assert_identical(ours.load(), zarr_twin.load())
    with h5py.File(tmp_path / "a.nc", "r") as file:
        assert file.attrs["_NCProperties"].decode().startswith("version=2,neurocnnf=")
