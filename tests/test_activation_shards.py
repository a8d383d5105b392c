"""Sharded extraction into one Zarr store: init, shards in any order (one killed and rerun),
merge; the result equals a one-process extraction bit for bit."""

import json

import numpy as np
import pytest
import torch
import xarray as xr
from test_activations import _stimuli

from neurocnnf.activations import Reduce, Shard, StoreError, extract, open_activations, parse_shard
from neurocnnf.activations import store as store_module
from neurocnnf.models import fmnist_small

OPTIONS = dict(batch_size=3, progress=False, iterations=2, reduce=Reduce("pca", 4))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return fmnist_small(iterations=2).eval()


def _assert_bit_identical(a: xr.Dataset, b: xr.Dataset) -> None:
    assert set(a.data_vars) == set(b.data_vars) and set(a.coords) == set(b.coords)
    for name in [*a.data_vars, *a.coords]:
        x, y = a[name].values, b[name].values
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if x.dtype.kind == "f":  # NaN where stored as NaN, the same bits everywhere
            assert x.tobytes() == y.tobytes(), name
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.attrs == b.attrs


def test_shards_rows_are_chunk_aligned_and_cover_the_set():
    rows = [Shard(i, 3).rows(11, 3) for i in range(3)]  # 4 chunks: 3, 3, 3, 2 rows
    assert [(r.start, r.stop) for r in rows] == [(0, 3), (3, 6), (6, 11)]
    assert [len(Shard(i, 6).rows(11, 3)) for i in range(6)] == [0, 3, 3, 0, 3, 2]
    assert parse_shard("1/4") == Shard(1, 4) and parse_shard("merge") == "merge"
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_sharded_equals_one_process_and_a_missing_shard_is_named(model, tmp_path, monkeypatch):
    stimuli = _stimuli(11)  # 4 chunks of 3: shard 0 of 2 writes rows 0-5, shard 1 rows 6-10
    single = open_activations(extract(model, stimuli, tmp_path / "one.zarr", **OPTIONS))
    out = tmp_path / "sharded.zarr"
    with pytest.raises(StoreError, match="initialise the store first"):
        extract(model, stimuli, out, shard=Shard(0, 2), **OPTIONS)
    partial = extract(model, stimuli, out, shard="init", **OPTIONS)
    assert partial == store_module.partial_path(out) and not out.exists()
    original, calls = store_module.PartialStore.write, {"n": 0}

    def dies_on_second(self, start, arrays):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        original(self, start, arrays)

    monkeypatch.setattr(store_module.PartialStore, "write", dies_on_second)
    with pytest.raises(KeyboardInterrupt):  # shard 1 killed in its second batch
        extract(model, stimuli, out, shard=Shard(1, 2), **OPTIONS)
    monkeypatch.setattr(store_module.PartialStore, "write", original)
    progress = json.loads((partial / "neurocnnf-progress-shard-1-of-2.json").read_text())
    assert (progress["start"], progress["done"], progress["stop"]) == (6, 9, 11)
    with pytest.raises(StoreError, match="presentations 0-5, 9-10 of 11 are not written"):
        extract(model, stimuli, out, shard="merge", **OPTIONS)
    written = []
    monkeypatch.setattr(store_module.PartialStore, "write",
                        lambda self, start, arrays: written.append(start) or
                        original(self, start, arrays))
    extract(model, stimuli, out, shard=Shard(1, 2), **OPTIONS)  # the rerun: its last batch only
    assert written == [9]
    with pytest.raises(StoreError, match="presentations 0-5 of 11"):
        extract(model, stimuli, out, shard="merge", **OPTIONS)
    extract(model, stimuli, out, shard=Shard(0, 2), **OPTIONS)
    assert extract(model, stimuli, out, shard="merge", **OPTIONS) == out
    assert not partial.exists() and not list(out.glob("neurocnnf-progress*"))
    _assert_bit_identical(open_activations(out), single)
    assert extract(model, stimuli, out, shard="merge", **OPTIONS) == out  # finished: no-op


def test_a_shard_of_other_settings_or_a_netcdf_path_is_refused(model, tmp_path):
    stimuli = _stimuli(6)
    out = tmp_path / "a.zarr"
    extract(model, stimuli, out, shard="init", **OPTIONS)
    with pytest.raises(StoreError, match="iterations: 2 -> 1"):
        extract(model, stimuli, out, shard=Shard(0, 2), **{**OPTIONS, "iterations": 1})
    with pytest.raises(StoreError, match="one Zarr store: give a .zarr path"):
        extract(model, stimuli, tmp_path / "a.nc", shard="init", **OPTIONS)
