"""Activation extraction: values equal the model's own trace, stores round-trip, resume,
bounded memory, time bins and NeuroidAssembly-shaped reads."""

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from neurocnnf.activations import (
    Reduce,
    StoreError,
    TimeBins,
    assembly,
    extract,
    extract_dataset,
    open_activations,
    trace_arrays,
)
from neurocnnf.activations import store as store_module
from neurocnnf.models import fmnist_small
from neurocnnf.stimuli import StimulusSet, perturb, render
from neurocnnf.stimuli.sets import _base_metadata


def _stimuli(n=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=generator)
    ids = [f"s{i:03d}" for i in range(n)]
    return StimulusSet(f"toy{n}", _base_metadata(ids, {"label": np.arange(n) % 10,
                                                       "animate": np.arange(n) % 2 == 0}),
                       images=images)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return fmnist_small(iterations=3).eval()


def test_values_equal_the_models_own_trace(model, tmp_path):
    stimuli = _stimuli()
    # one batch, so that the model sees exactly the batch the extraction saw
    ds = extract_dataset(model, stimuli, tmp_path / "a.nc", batch_size=10, progress=False)
    x = render(stimuli, np.arange(10), 1, 28)
    with torch.no_grad():
        trace = model(x, layers=None)
    for t in range(4):
        np.testing.assert_allclose(ds["conv2"].values[:, t], trace.forward["conv2"][t].flatten(1),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ds["conv1"].values[:, t], trace.forward["conv1"][0].flatten(1),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ds["h_hat"].values[:, t], trace.h_hat[t].flatten(1), atol=1e-6)
        np.testing.assert_allclose(ds["logits"].values[:, t], trace.logits[t], atol=1e-5)
    for t in range(3):
        np.testing.assert_allclose(ds["conv2_feedback"].values[:, t + 1],
                                   trace.feedback["conv2"][t].flatten(1), atol=1e-6)
    assert np.isnan(ds["conv2_feedback"].values[:, 0]).all()
    np.testing.assert_allclose(ds["probabilities"].sum("neuroid_probabilities"), 1, atol=1e-5)
    assert list(ds["stimulus_id"].values) == list(stimuli.metadata["stimulus_id"])
    assert ds["reconstruction_error"].values[:, 0].max() == 0  # h_hat_0 = h
    assert (ds["reconstruction_error"].values[:, 1:] > 0).all()
    assert np.isnan(ds["logit_change"].values[:, 0]).all()
    flips = ds["mask_flip_fraction"].values[:, 1:]
    assert ((flips >= 0) & (flips <= 1)).all()
    assert ds.attrs["iterations"] == 3 and len(ds.attrs["checkpoint_sha256"]) == 64


def test_iteration_zero_equals_the_plain_cnn(model, tmp_path):
    stimuli = _stimuli(6)
    ds = extract_dataset(model, stimuli, tmp_path / "a.nc", iterations=4, progress=False)
    plain = extract_dataset(model, stimuli, tmp_path / "plain.nc", iterations=0, progress=False)
    np.testing.assert_array_equal(ds["conv2"].values[:, 0], plain["conv2"].values[:, 0])
    np.testing.assert_array_equal(ds["logits"].values[:, 0], plain["logits"].values[:, 0])
    assert plain.sizes["iteration"] == 1
    # no feedback at T = 0: all NaN, which a Zarr store leaves to its fill value (no file)
    zarr = extract_dataset(model, stimuli, tmp_path / "plain.zarr", iterations=0, progress=False)
    assert not list((tmp_path / "plain.zarr" / "conv2_feedback").glob("[0-9]*"))
    assert list((tmp_path / "plain.zarr" / "conv2").glob("[0-9]*"))
    for name in plain.data_vars:
        assert zarr[name].values.tobytes() == plain[name].values.tobytes(), name


def test_netcdf_and_zarr_round_trip_equal(model, tmp_path):
    stimuli = _stimuli(9)
    a = extract_dataset(model, stimuli, tmp_path / "a.nc", batch_size=4, progress=False)
    b = extract_dataset(model, stimuli, tmp_path / "a.zarr", batch_size=4, progress=False)
    for name in ("conv1", "conv2", "conv2_feedback", "logits", "reconstruction_error"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    for coord in ("stimulus_id", "label", "animate", "time_bin_start", "neuroid_id_conv2"):
        np.testing.assert_array_equal(a[coord].values, b[coord].values)
    assert a["animate"].dtype == bool and a.attrs["layers"] == b.attrs["layers"]


@pytest.mark.parametrize("n, batch, dtype", [(7, 3, "float32"), (2, 4, "float16")])
def test_stores_written_as_bytes_equal_the_zarr_library_path(model, tmp_path, monkeypatch, n,
                                                             batch, dtype):
    """Batches go to disk as the Zarr chunk files' bytes (none for feedback's all-NaN
    iteration 0), and as bytes at each NetCDF variable's offset; both stores equal the one the
    zarr library writes, with a short last batch, a set smaller than one batch, float16 and a
    one-dimensional variable (halted_at)."""
    stimuli = _stimuli(n)
    options = dict(batch_size=batch, progress=False, dtype=dtype, halt=0.05)
    chunk_files, chunk_path = [], store_module._chunk_path

    def record(*args):
        chunk_files.append(chunk_path(*args))
        return chunk_files[-1]

    monkeypatch.setattr(store_module, "_chunk_path", record)
    fast = {s: extract_dataset(model, stimuli, tmp_path / f"fast{s}", **options)
            for s in (".nc", ".zarr")}
    by_hand = {(path.parent.name, path.name) for path in chunk_files}
    on_disk = {(var, path.name) for var in fast[".zarr"].data_vars
               for path in (tmp_path / "fast.zarr" / var).iterdir() if path.name[0] != "."}
    batches = -(-n // batch)
    assert on_disk <= by_hand and len(on_disk) >= len(fast[".zarr"].data_vars) * batches
    assert by_hand - on_disk == {(var, f"{index}.0.0") for var in fast[".zarr"].data_vars
                                 if var.endswith("_feedback") for index in range(batches)}
    monkeypatch.setattr(store_module, "_raw_layout", lambda folder: None)
    slow = extract_dataset(model, stimuli, tmp_path / "slow.zarr", **options)
    assert {(path.parent.name, path.name) for path in chunk_files} == by_hand  # none by hand
    assert set(slow.data_vars) >= {"halted_at"}
    for suffix in (".nc", ".zarr"):
        assert set(fast[suffix].data_vars) == set(slow.data_vars)
        for name in slow.data_vars:
            values = fast[suffix][name].values
            assert values.dtype == np.dtype(dtype) and values.shape[0] == n
            assert values.tobytes() == slow[name].values.tobytes(), (suffix, name)


def test_a_layer_computed_once_is_copied_and_stored_once(model, tmp_path, monkeypatch):
    """An encoder tap (the same values at every iteration) is one block repeated along the
    iteration axis: a read-only view, and in Zarr its iterations' chunk files are hard links
    of one file (or separate files where the file system makes no links); feedback, NaN at
    iteration 0, has no chunk file there; every store reads back the values of the model's
    trace, also when a batch is written again (resume)."""
    stimuli = _stimuli(5)
    arrays = trace_arrays(model, render(stimuli, np.arange(5), 1, 28), ["conv1", "conv2"],
                          3, None)
    conv1, conv2 = arrays["conv1"], arrays["conv2"]
    assert conv1.shape == (5, 4, 32 * 28 * 28) and conv1.strides[1] == 0
    assert not conv1.flags.writeable and conv2.strides[1] != 0 and conv2.flags.writeable
    with torch.no_grad():
        trace = model(render(stimuli, np.arange(5), 1, 28), layers=["conv1"])
    np.testing.assert_array_equal(conv1[:, 3], trace.forward["conv1"][3].flatten(1).numpy())
    # feedback laid out by iteration (as a Zarr store writes it): the same values
    by_iteration = trace_arrays(model, render(stimuli, np.arange(5), 1, 28), ["conv2"], 3, None,
                                feedback_by_iteration=True)["conv2_feedback"]
    assert by_iteration[:, 1].flags.c_contiguous and not by_iteration.flags.c_contiguous
    assert by_iteration.tobytes() == arrays["conv2_feedback"].tobytes()

    linked = extract_dataset(model, stimuli, tmp_path / "a.zarr", batch_size=2, progress=False)
    for batch in range(3):
        files = [tmp_path / "a.zarr" / "conv1" / f"{batch}.{t}.0" for t in range(4)]
        assert len({path.stat().st_ino for path in files}) == 1
        assert files[0].stat().st_nlink == 4
        assert (tmp_path / "a.zarr" / "conv2" / f"{batch}.0.0").stat().st_nlink == 1
        feedback = tmp_path / "a.zarr" / "conv2_feedback"
        assert [(feedback / f"{batch}.{t}.0").exists() for t in range(4)] == [False] + [True] * 3
    netcdf = extract_dataset(model, stimuli, tmp_path / "a.nc", batch_size=2, progress=False)
    # a resumed batch over a file left at iteration 0 (an all-NaN chunk): the file goes
    layout = store_module._raw_layout(feedback)
    (feedback / "1.0.0").write_bytes(b"stale")
    store_module._write_raw_chunk(store_module.DirectWriter(), feedback, 1,
                                  arrays["conv2_feedback"][2:4], *layout)
    assert not (feedback / "1.0.0").exists() and (feedback / "1.1.0").exists()
    # written again over its links (a resumed batch), and where hard links fail
    folder = tmp_path / "a.zarr" / "conv1"
    layout = store_module._raw_layout(folder)
    store_module._write_raw_chunk(store_module.DirectWriter(), folder, 1, conv1[2:4], *layout)
    assert (folder / "1.3.0").stat().st_ino == (folder / "1.0.0").stat().st_ino

    def no_links(source, target, link=os.link, **kwargs):  # for chunk files only
        if Path(target).parent.name.startswith("conv"):
            raise OSError(errno.EPERM, "Operation not permitted")
        return link(source, target, **kwargs)

    monkeypatch.setattr(store_module.os, "link", no_links)
    separate = extract_dataset(model, stimuli, tmp_path / "b.zarr", batch_size=2,
                               progress=False)
    assert (tmp_path / "b.zarr" / "conv1" / "0.1.0").stat().st_nlink == 1
    for ds in (linked, separate, netcdf, open_activations(tmp_path / "a.zarr")):
        np.testing.assert_array_equal(ds["conv1"].values[:, :, :10], conv1[:, :, :10])
        for name in ("conv1", "conv2_feedback"):
            assert ds[name].values.tobytes() == netcdf[name].values.tobytes()
        assert np.isnan(ds["conv2_feedback"].values[:, 0]).all()
        np.testing.assert_allclose(ds["conv2_feedback"].values[:, 1:, :10],  # batches of 2
                                   arrays["conv2_feedback"][:, 1:, :10], rtol=1e-5, atol=1e-6)


def test_assembly_is_neuroid_assembly_shaped(model, tmp_path):
    ds = extract_dataset(model, _stimuli(5), tmp_path / "new" / "folder" / "a.nc",
                         time_bins=TimeBins(100, 100), progress=False)
    conv2 = assembly(ds, "conv2")
    assert conv2.dims == ("presentation", "neuroid", "time_bin")
    assert conv2.shape == (5, 64 * 14 * 14, 4)
    assert list(conv2["time_bin_start"].values) == [100, 200, 300, 400]
    assert set(conv2["layer"].values) == {"conv2"}
    assert conv2["neuroid_id"].values[0] == "conv2.0.0.0" and conv2["channel"].values[-1] == 63
    assert list(conv2["neuroid_id"].values) == [  # every id names its channel, row and column
        f"conv2.{c}.{y}.{x}" for c, y, x in zip(conv2["channel"].values, conv2["y"].values,
                                                 conv2["x"].values, strict=True)]
    with pytest.raises(StoreError, match="unknown layer 'IT'"):
        assembly(ds, "IT")


def test_unknown_layers_and_missing_store_are_clear_errors(model, tmp_path):
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['V4'\]"):
        extract(model, _stimuli(2), tmp_path / "x.nc", layers=["V4"], progress=False)
    with pytest.raises(StoreError, match="does not exist"):
        open_activations(tmp_path / "none.nc")
    with pytest.raises(StoreError, match=".nc .*or .zarr"):
        extract(model, _stimuli(2), tmp_path / "x.csv", progress=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create the folder of .*file/x.nc"):
        extract(model, _stimuli(2), tmp_path / "file" / "x.nc", progress=False)
    from neurocnnf.models import fmnist_pc, supports_halting

    assert supports_halting(model) and not supports_halting(fmnist_pc())
    with pytest.raises(ValueError, match="halting .* CNN-F feature; fmnist_pc runs a fixed"):
        extract(fmnist_pc(), _stimuli(2), tmp_path / "pc.nc", halt=0.1, progress=False)
    assert not (tmp_path / "pc.nc.partial").exists()


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_killed_extraction_resumes_to_the_same_file(model, tmp_path, suffix, monkeypatch):
    stimuli = _stimuli(12)
    straight = extract_dataset(model, stimuli, tmp_path / f"straight{suffix}", batch_size=4,
                               progress=False)
    original = store_module.PartialStore.write
    calls = {"n": 0}

    def dies_on_third(self, start, arrays):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original(self, start, arrays)

    monkeypatch.setattr(store_module.PartialStore, "write", dies_on_third)
    target = tmp_path / f"resumed{suffix}"
    with pytest.raises(KeyboardInterrupt):
        extract(model, stimuli, target, batch_size=4, progress=False)
    assert not target.exists() and store_module.partial_path(target).exists()
    monkeypatch.setattr(store_module.PartialStore, "write", original)
    resumed = extract_dataset(model, stimuli, target, batch_size=4, progress=False)
    np.testing.assert_array_equal(resumed["conv2"].values, straight["conv2"].values)
    assert resumed.sizes["presentation"] == 12


def test_reductions_keep_iterations_comparable(model, tmp_path):
    stimuli = _stimuli(20)
    pca = extract_dataset(model, stimuli, tmp_path / "p.nc", reduce=Reduce("pca", 8),
                          progress=False)
    assert pca.sizes["neuroid_conv2"] == 8 and pca.sizes["neuroid_logits"] == 10
    assert json.loads(pca.attrs["reduction"])["method"] == "pca"
    random = extract_dataset(model, stimuli, tmp_path / "r.nc", reduce=Reduce("random", 16),
                             progress=False)
    full = extract_dataset(model, stimuli, tmp_path / "f.nc", progress=False)
    # a random projection roughly preserves distances (Johnson-Lindenstrauss)
    d_full = np.linalg.norm(full["conv2"].values[0, 1] - full["conv2"].values[1, 1])
    d_proj = np.linalg.norm(random["conv2"].values[0, 1] - random["conv2"].values[1, 1])
    assert 0.3 < d_proj / d_full < 3


def test_time_bins_answer_kar2019_bins_with_changing_iterations():
    bins = TimeBins()
    requested = np.arange(70, 250, 10)
    chosen = bins.iteration_for(requested, iterations=4)
    assert chosen[0] == 0 and chosen[-1] == 4 and len(set(chosen)) == 5
    assert (np.diff(chosen) >= 0).all()


def test_perturbation_coords_reach_the_dataset(model, tmp_path):
    stimuli = perturb(_stimuli(4), "blur", [0.0, 1.5])
    ds = extract_dataset(model, stimuli, tmp_path / "b.nc", layers=["conv2", "logits"],
                         progress=False)
    assert list(ds["level"].values) == [0.0] * 4 + [1.5] * 4
    assert list(ds["source_id"].values[:4]) == list(ds["source_id"].values[4:])
    assert set(ds.data_vars) >= {"conv2", "conv2_feedback", "logits"} and "conv1" not in ds


PEAK = textwrap.dedent("""
    import sys, torch, numpy as np
    from neurocnnf.models import fmnist_adv
    from neurocnnf.stimuli import StimulusSet
    from neurocnnf.stimuli.sets import _base_metadata
    from neurocnnf.activations import extract
    n = int(sys.argv[1])
    torch.manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)
    stimuli = StimulusSet("s", _base_metadata([str(i) for i in range(n)]), images=images)
    extract(fmnist_adv(iterations=2), stimuli, sys.argv[2], layers=["conv3", "conv4"],
            batch_size=32, progress=False)
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's size across exec)
    print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
""")


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_number_of_stimuli(tmp_path):
    peaks = []  # 160 stimuli already fill the compute/write pipeline (a few batches of 32)
    for n in (160, 640):
        done = subprocess.run([sys.executable, "-c", PEAK, str(n), str(tmp_path / f"{n}.nc")],
                              capture_output=True, text=True, timeout=600, check=True)
        peaks.append(int(done.stdout.split()[-1]) / 1024)  # MiB
    # 640 stimuli x 3 iterations x 2 layers of 25k+12k float32 = ~570 MiB on disk
    assert (tmp_path / "640.nc").stat().st_size > 400 * 2**20
    assert peaks[1] < peaks[0] + 64, peaks


def test_the_options_are_the_resume_fingerprint_of_earlier_stores(tmp_path):
    """ExtractOptions.fingerprint is the settings dict extraction has always stored, so a partial
    store written before ExtractOptions existed resumes; a changed option is still refused."""
    from neurocnnf.activations import ExtractOptions, model_digest
    from neurocnnf.activations.extract import stimulus_digest

    model, stimuli = fmnist_small(iterations=2), _stimuli(3)
    options = ExtractOptions(layers=["conv1"], reduce=Reduce("random", 8), halt=0.1,
                             model_id="m", batch_size=2, progress=False)
    assert options.fingerprint(model, stimuli) == {  # as extract() wrote it before
        "model_id": "m", "model_sha256": model_digest(model), "stimulus_set": stimuli.identifier,
        "stimuli": stimulus_digest(stimuli), "n": 3, "layers": ["conv1"], "iterations": 2,
        "eta": model.eta, "feedback": True, "reduce": vars(Reduce("random", 8)),
        "time_bins": vars(TimeBins()), "dtype": "float32", "halt": 0.1}
    assert "halt" not in ExtractOptions().fingerprint(model, stimuli)
    store = extract(model, stimuli, tmp_path / "a.zarr", options, iterations=1)
    assert open_activations(store).sizes["iteration"] == 2  # a keyword replaces a field
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['layer'\]"):
        extract(model, stimuli, tmp_path / "b.zarr", layer=["conv1"])
