"""Brain-Score adapter, with the real brainscore-vision (run in .venv-brainscore; skipped
where it is not installed). Benchmark data lives on S3, out of reach here: the assemblies are
built by the tests in MajajHong2015's format."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("brainscore_vision")

from brainscore_core.supported_data_standards.brainio.assemblies import (  # noqa: E402
    NeuroidAssembly,
)
from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet  # noqa: E402

from neurocnnf.brainscore.caches import configure_environment  # noqa: E402
from neurocnnf.brainscore.commitment import make_brain_model  # noqa: E402
from neurocnnf.brainscore.export import export_plugin  # noqa: E402
from neurocnnf.brainscore.scoring import (  # noqa: E402
    ScoringError,
    load_assembly,
    save_assembly,
    score_assembly,
    score_benchmark,
    score_time_bins,
)
from neurocnnf.models import PredictiveCodingNet, fmnist_small  # noqa: E402
from neurocnnf.train import save_model  # noqa: E402

KAR2019_BINS = [(start, start + 10) for start in range(70, 250, 10)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("bs")
    configure_environment(root / "cache")
    os.environ["RESULTCACHING_DISABLE"] = "1"
    os.environ["BS_INSTALL_DEPENDENCIES"] = "no"  # our choice as users: no pip at load time
    rng = np.random.default_rng(0)
    rows, paths = [], {}
    for i in range(96):
        path = root / f"img{i:03d}.png"
        image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(image).resize((64, 64)).save(path)
        rows.append({"stimulus_id": f"img{i:03d}", "object_name": f"obj{i % 8}",
                     "image_label": f"obj{i % 8}"})
        paths[f"img{i:03d}"] = str(path)
    stimuli = StimulusSet(rows)
    stimuli.stimulus_paths = paths
    stimuli.identifier = "neurocnnf-test-stimuli"
    torch.manual_seed(0)
    model = fmnist_small(iterations=4).eval()
    return root, model, stimuli


def _brain_model(model, name="cnnf-test"):
    return make_brain_model(model, name)


def test_device_moves_the_model_and_the_batches_where_it_says():
    """Brain-Score's wrapper picks cuda when available, else cpu; ``device`` overrides it
    (here 'meta', which Brain-Score would never pick, so the override is what is seen)."""
    model = fmnist_small(iterations=1).eval()
    wrapper = make_brain_model(model, "cnnf-test-device", device="meta").activations_model
    assert wrapper._device == torch.device("meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}


def _assembly(values, stimuli, repetitions=1, noise=0.0, seed=0, region="IT"):
    """A MajajHong2015-format assembly: presentation (x repetition) x neuroid x time_bin."""
    rng = np.random.default_rng(seed)
    n_stim, n_neuroid = values.shape
    data = np.concatenate([values + noise * rng.standard_normal(values.shape)
                           for _ in range(repetitions)])
    ids = list(stimuli["stimulus_id"]) * repetitions
    objects = list(stimuli["object_name"]) * repetitions
    assembly = NeuroidAssembly(data[..., None], coords={
        "stimulus_id": ("presentation", ids),
        "object_name": ("presentation", objects),
        "image_label": ("presentation", objects),
        "repetition": ("presentation", np.repeat(np.arange(repetitions), n_stim)),
        "stimulus_path": ("presentation", [stimuli.stimulus_paths[s] for s in ids]),
        "neuroid_id": ("neuroid", [f"n{i}" for i in range(n_neuroid)]),
        "region": ("neuroid", [region] * n_neuroid),
        "animal": ("neuroid", ["synthetic"] * n_neuroid),
        "electrode": ("neuroid", np.arange(n_neuroid)),
        "time_bin_start": ("time_bin", [70]), "time_bin_end": ("time_bin", [170]),
    }, dims=["presentation", "neuroid", "time_bin"])
    assembly.attrs["stimulus_set"] = stimuli
    return assembly


def _model_responses(brain_model, stimuli):
    brain_model.start_recording("IT", [(70, 170)])
    return brain_model.look_at(stimuli)


def test_look_at_answers_kar2019_bins_with_changing_iterations(workspace):
    _, model, stimuli = workspace
    brain_model = _brain_model(model)
    brain_model.start_recording("IT", KAR2019_BINS)
    responses = brain_model.look_at(_subset(stimuli, 12))
    assert responses.dims == ("presentation", "neuroid", "time_bin")
    assert responses.sizes["time_bin"] == 18
    iterations = list(responses["iteration_mean"].values)
    assert iterations[0] == 0 and iterations[-1] == 4 and len(set(iterations)) == 5
    first, last = responses.isel(time_bin=0).values, responses.isel(time_bin=-1).values
    assert not np.allclose(first, last)  # responses change over time: no NaN in Kar2019
    with pytest.raises(ValueError, match="unknown region 'MT'"):
        brain_model.start_recording("MT", KAR2019_BINS)


def test_the_predictive_coding_comparator_is_a_brain_model_too(workspace):
    _, _, stimuli = workspace
    torch.manual_seed(0)
    brain_model = _brain_model(PredictiveCodingNet(iterations=3).eval(), "pc-test")
    brain_model.start_recording("V4", KAR2019_BINS)
    responses = brain_model.look_at(_subset(stimuli, 8))
    assert responses.dims == ("presentation", "neuroid", "time_bin")
    assert sorted(set(responses["iteration_mean"].values)) == [0, 1, 2, 3]
    assert not np.allclose(responses.isel(time_bin=0).values, responses.isel(time_bin=-1).values)


def test_majajhong_bin_is_the_overlap_weighted_mix_of_iterations_0_to_2(workspace):
    _, model, stimuli = workspace
    subset = _subset(stimuli, 6)
    brain_model = _brain_model(model)
    raw = brain_model.activations_model(subset, layers=[f"conv2-t{t}" for t in range(5)])
    per_iteration = [raw[{"neuroid": raw["layer"].values == f"conv2-t{t}"}]
                     .transpose("presentation", "neuroid").values for t in range(5)]
    brain_model.start_recording("IT", [(70, 170)])
    mixed = brain_model.look_at(subset).transpose("presentation", "neuroid").values
    # IT windows 70-110, 110-150, 150-190 ms: overlaps of 40, 40 and 20 ms with 70-170 ms
    by_hand = 0.4 * per_iteration[0] + 0.4 * per_iteration[1] + 0.2 * per_iteration[2]
    np.testing.assert_allclose(mixed, by_hand, rtol=1e-5, atol=1e-6)
    assert not np.allclose(mixed, per_iteration[0])  # the feedback reaches the static bin
    nearest = make_brain_model(model, "cnnf-test-nearest", time_mode="nearest")
    nearest.start_recording("IT", [(70, 170)])
    np.testing.assert_allclose(nearest.look_at(subset).transpose("presentation", "neuroid")
                               .values, per_iteration[0], rtol=1e-5, atol=1e-6)


def test_microsaccade_trials_work_as_in_brainscores_model_commitment(workspace):
    _, model, stimuli = workspace
    brain_model = _brain_model(model)
    assert brain_model.activations_model._extractor._microsaccade_helper.visual_degrees == 8
    brain_model.start_recording("V1", [(50, 100)])
    responses = brain_model.look_at(_subset(stimuli, 4), number_of_trials=2,
                                    require_variance=True)
    assert responses.sizes["presentation"] == 8
    shifts = responses["microsaccade_shift_x_pixels"].values
    assert len(set(np.round(shifts, 6))) == 2
    values = responses.transpose("presentation", "neuroid").values
    first, second = values[shifts == 0], values[shifts != 0]
    assert first.shape == second.shape and not np.allclose(first, second)
    plain = brain_model.look_at(_subset(stimuli, 4))  # and back to one trial
    assert plain.sizes["presentation"] == 4


def test_label_task_answers_with_the_models_own_classes(workspace):
    _, model, stimuli = workspace
    names = [f"class{i}" for i in range(10)]
    brain_model = make_brain_model(model, "cnnf-test-labels", class_names=names)
    brain_model.start_task("label", ["class3", "class7"])
    labels = brain_model.look_at(_subset(stimuli, 6))
    assert labels.sizes["presentation"] == 6
    assert set(labels.values.ravel()) <= {"class3", "class7"}
    logits = brain_model.activations_model(_subset(stimuli, 6), layers=["logits-last"])
    expected = np.where(logits.values[:, 3] >= logits.values[:, 7], "class3", "class7")
    assert list(labels.values.ravel()) == list(expected)
    with pytest.raises(NotImplementedError, match="labels only its own classes"):
        brain_model.start_task("label", "imagenet")
    with pytest.raises(NotImplementedError, match="unnamed"):
        _brain_model(model).start_task("label", ["class3"])


def _subset(full, n):
    subset = StimulusSet(full[:n])
    subset.stimulus_paths = {s: full.stimulus_paths[s] for s in subset["stimulus_id"]}
    subset.identifier = f"{full.identifier}-{n}"
    return subset


def test_probabilities_task_sums_to_one(workspace):
    _, model, stimuli = workspace
    brain_model = _brain_model(model)
    brain_model.start_task("probabilities", stimuli)
    probabilities = brain_model.look_at(_subset(stimuli, 20))
    assert probabilities.dims == ("presentation", "choice")
    np.testing.assert_allclose(probabilities.sum("choice").values, 1, atol=1e-5)


def test_passes_brainscores_own_model_check(workspace, monkeypatch):
    from brainscore_vision.model_helpers.check_submission import check_models

    _, model, stimuli = workspace
    brain_model = _brain_model(model)
    values = _model_responses(brain_model, stimuli).values[:, :40]
    synthetic = _assembly(values, stimuli, repetitions=2, noise=0.1)
    monkeypatch.setattr(check_models, "load_dataset", lambda identifier: synthetic)
    check_models.check_brain_model_processing(brain_model)


def test_scores_a_planted_linear_map_high_and_random_neurons_near_zero(workspace, tmp_path):
    _, model, stimuli = workspace
    brain_model = _brain_model(model)
    features = _model_responses(brain_model, stimuli).values
    rng = np.random.default_rng(1)
    # a linear map of the layer through its 10 leading principal axes (learnable from ~90 images)
    centred = features - features.mean(0)
    axes = np.linalg.svd(centred, full_matrices=False)[2][:10]
    mapped = centred @ axes.T @ rng.standard_normal((10, 30))
    planted = _assembly(mapped, stimuli, repetitions=2, noise=0.2 * mapped.std())
    random = _assembly(rng.standard_normal(mapped.shape), stimuli, repetitions=2, noise=0.2)
    save_assembly(planted, tmp_path / "planted.nc")
    assembly, loaded_stimuli = load_assembly(tmp_path / "planted.nc")
    good = score_assembly(brain_model, assembly, loaded_stimuli, "IT")
    bad = score_assembly(brain_model, random, stimuli, "IT")
    assert good.raw > 0.6 and good.ceiling is not None and good.ceiling > 0.6
    assert good.explained_variance == pytest.approx(good.raw ** 2 / good.ceiling)
    assert good.time_bin == (70, 170)
    assert abs(bad.raw) < 0.2, bad
    assert good.layer == "conv2"


@pytest.mark.slow
def test_each_of_the_assemblys_own_time_bins_is_scored(workspace):
    _, model, stimuli = workspace
    brain_model = _brain_model(model)
    brain_model.start_recording("IT", [(70, 110)])
    early = brain_model.look_at(stimuli).values  # iteration 0 alone
    centred = early - early.mean(0)
    axes = np.linalg.svd(centred, full_matrices=False)[2][:10]
    rng = np.random.default_rng(3)
    mapped = centred @ axes.T @ rng.standard_normal((10, 20))
    late = rng.standard_normal(mapped.shape)  # nothing the model explains
    one = _assembly(mapped, stimuli, repetitions=2, noise=0.2 * mapped.std())
    two = _assembly(late, stimuli, repetitions=2, noise=0.2, seed=1)
    both = NeuroidAssembly(np.concatenate([one.values, two.values], axis=-1), coords={
        **{c: (d, v) for c, d, v in _presentation_and_neuroid_coords(one)},
        "time_bin_start": ("time_bin", [70, 190]), "time_bin_end": ("time_bin", [110, 230])},
        dims=["presentation", "neuroid", "time_bin"])
    results = score_time_bins(brain_model, both, stimuli, "IT")
    assert [r.time_bin for r in results] == [(70, 110), (190, 230)]
    assert results[0].raw > 0.6 and abs(results[1].raw) < 0.2
    with pytest.raises(ScoringError, match="2 time bins"):
        score_assembly(brain_model, both, stimuli, "IT")


def _presentation_and_neuroid_coords(assembly):
    from brainscore_core.supported_data_standards.brainio.assemblies import walk_coords

    return [(c, d, v) for c, d, v in walk_coords(assembly) if d != ("time_bin",)]


def test_public_benchmark_offline_is_one_clear_error(workspace):
    _, model, _ = workspace
    with pytest.raises(ScoringError, match="cannot be reached"):
        score_benchmark(_brain_model(model), "MajajHong2015public.IT-pls")


def test_exported_plugin_registers_in_a_fresh_interpreter(workspace, tmp_path):
    root, model, _ = workspace
    checkpoint = tmp_path / "run" / "best.safetensors"
    save_model(model, checkpoint, epoch=1)
    plugin = export_plugin(checkpoint, tmp_path / "plugin",
                           weights_url="https://example.org/w.safetensors", verify_weights=False)
    for name in ("__init__.py", "model.py", "test.py", "metadata.yml", "requirements.txt"):
        assert (plugin / name).exists(), name
    identifier = plugin.name
    assert (plugin / "region_layer_map" / f"{identifier}.json").exists()
    code = (
        "import sys, os; sys.path.insert(0, sys.argv[1]);"
        "os.environ['NEUROCNNF_WEIGHTS'] = sys.argv[2];"
        f"import {identifier} as plugin;"
        "from brainscore_vision import model_registry;"
        f"model = model_registry['{identifier}']();"
        "print(model.identifier, model.region_layer_map['IT'])"
    )
    done = subprocess.run([sys.executable, "-c", code, str(plugin.parent), str(checkpoint)],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, BS_INSTALL_DEPENDENCIES="no"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == [identifier, "conv2"]


@pytest.mark.slow
def test_layer_scores_cover_every_layer_and_iteration_and_find_the_planted_one(workspace):
    from neurocnnf.brainscore.scoring import layer_scores

    _, model, stimuli = workspace
    model = fmnist_small(iterations=1).eval()
    subset = stimuli  # 96 images: each stratified test split holds all 8 objects
    features = _model_responses(_brain_model(model, "cnnf-planted"), subset).values
    centred = features - features.mean(0)
    axes = np.linalg.svd(centred, full_matrices=False)[2][:8]
    mapped = centred @ axes.T @ np.random.default_rng(2).standard_normal((8, 20))
    planted = _assembly(mapped, subset, repetitions=1)
    scores = layer_scores(model, "cnnf-planted", planted, subset, "IT")
    assert set(zip(scores["layer"], scores["iteration"], strict=True)) == {
        (layer, t) for layer in model.taps for t in (0, 1)}
    raw = scores.set_index(["layer", "iteration"])["raw"]
    assert raw[("conv2", 0)] > 0.5 and raw[("conv2", 0)] > raw["conv1"].max()
    assert raw[("conv2", 0)] >= raw[("conv2", 1)] - 0.05  # the map was planted at t = 0


@pytest.mark.slow
def test_the_score_command_uses_the_assemblys_own_time_bin(workspace, tmp_path):
    root, model, stimuli = workspace
    checkpoint = tmp_path / "run" / "best.safetensors"
    save_model(model, checkpoint, epoch=1)
    brain_model = _brain_model(model)
    brain_model.start_recording("IT", [(190, 230)])
    late = brain_model.look_at(stimuli).values  # iteration 3 alone
    centred = late - late.mean(0)
    axes = np.linalg.svd(centred, full_matrices=False)[2][:10]
    mapped = centred @ axes.T @ np.random.default_rng(4).standard_normal((10, 20))
    assembly = _assembly(mapped, stimuli, repetitions=2, noise=0.2 * mapped.std())
    assembly = NeuroidAssembly(assembly.values, coords={
        **{c: (d, v) for c, d, v in _presentation_and_neuroid_coords(assembly)},
        "time_bin_start": ("time_bin", [190]), "time_bin_end": ("time_bin", [230])},
        dims=["presentation", "neuroid", "time_bin"])
    save_assembly(assembly, tmp_path / "late.nc")
    done = subprocess.run([sys.executable, "-m", "neurocnnf.cli", "brainscore", "score",
                           str(checkpoint), str(tmp_path / "late.nc"), "--out",
                           str(tmp_path / "scores.csv"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, RESULTCACHING_HOME=str(root / "cache" / "rc")))
    assert done.returncode == 0, done.stderr[-3000:]
    import pandas as pd

    table = pd.read_csv(tmp_path / "scores.csv")
    assert list(table["time_bin"]) == ["(190, 230)"]
    row = table.iloc[0]
    assert row["raw"] > 0.6
    assert row["explained_variance"] == pytest.approx(row["raw"] ** 2 / row["ceiling"])


@pytest.mark.slow
def test_score_benchmark_runs_an_algonauts_rdm_benchmark_from_the_local_data(workspace,
                                                                             monkeypatch):
    from brainscore_vision.benchmark_helpers import screen

    from neurocnnf.analysis.rsa import compare
    from neurocnnf.data import roots
    from neurocnnf.data.brain import load_brain_rdms

    if roots.find(["algonauts2019/78images/images"]) is None:
        pytest.skip("the Algonauts 2019 data are not in the data roots")
    root, model, _ = workspace
    # where Brain-Score puts the resized images (read from BRAINSCORE_HOME at its import)
    monkeypatch.setattr(screen, "root_path", root / "stimuli_on_screen")
    result = score_benchmark(_brain_model(model), "Algonauts2019.78-EVC-rdm")
    brain = load_brain_rdms("algonauts78", "EVC").rdms
    assert result["ceiling"] == pytest.approx(np.mean([compare(s, brain.mean(0))
                                                       for s in brain]), abs=1e-10)
    assert result["score"] == pytest.approx(result["raw"] / result["ceiling"])
