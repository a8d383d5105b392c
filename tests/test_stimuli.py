"""Stimulus sets: folders with CSV metadata, dataset subsets, perturbations, conversion."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from neurocnnf.models import fmnist_small
from neurocnnf.stimuli import (
    StimulusError,
    StimulusSet,
    apply,
    convert,
    from_folder,
    load_stimuli,
    perturb,
    render,
    write_folder,
)
from neurocnnf.stimuli.sets import _base_metadata


def _folder(tmp_path, n=4, size=40):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        name = f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (size, size + 10, 3), dtype=np.uint8)).save(
            tmp_path / name)
        rows.append({"stimulus_id": f"s{i}", "filename": name, "category": "ab"[i % 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "stimuli.csv", index=False)
    return tmp_path


def _toy_set(n=6):
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)
    ids = [f"t{i}" for i in range(n)]
    return StimulusSet("toy", _base_metadata(ids, {"label": np.arange(n) % 10}), images=images)


def test_folder_with_csv_keeps_metadata_and_converts_images(tmp_path):
    stimuli = from_folder(_folder(tmp_path))
    assert list(stimuli.metadata["stimulus_id"]) == ["s0", "s1", "s2", "s3"]
    assert list(stimuli.metadata["category"]) == ["a", "b", "a", "b"]
    images = render(stimuli, np.arange(4), channels=1, size=28)
    assert images.shape == (4, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1


def test_folder_errors_name_the_problem(tmp_path):
    folder = _folder(tmp_path)
    table = pd.read_csv(folder / "stimuli.csv")
    table.drop(columns="stimulus_id").to_csv(folder / "no_id.csv", index=False)
    with pytest.raises(StimulusError, match="no 'stimulus_id' column"):
        from_folder(folder, folder / "no_id.csv")
    (folder / "img1.png").write_bytes(b"not an image")
    stimuli = from_folder(folder)
    with pytest.raises(StimulusError, match="cannot read image .*img1.png"):
        render(stimuli, np.arange(4), 1, 28)
    (folder / "img2.png").unlink()
    with pytest.raises(StimulusError, match="do not exist"):
        from_folder(folder)
    with pytest.raises(StimulusError, match="unknown stimulus set"):
        load_stimuli("imagenet")


def test_convert_luma_and_resize():
    red = torch.zeros(3, 10, 10, dtype=torch.uint8)
    red[0] = 255
    grey = convert(red, 1, 5)
    assert grey.shape == (1, 5, 5) and torch.allclose(grey, torch.full_like(grey, 0.299))
    assert convert(torch.full((1, 4, 4), 255, dtype=torch.uint8), 3, 4).shape == (3, 4, 4)


def test_perturbed_sets_keep_source_ids_and_levels():
    stimuli = _toy_set()
    noisy = perturb(stimuli, "noise", [0.0, 0.1, 0.3])
    assert len(noisy) == 18
    assert set(noisy.metadata["source_id"]) == set(stimuli.metadata["stimulus_id"])
    assert noisy.metadata["stimulus_id"].is_unique
    assert sorted(noisy.metadata["level"].unique()) == [0.0, 0.1, 0.3]
    clean = render(stimuli, np.arange(6), 1, 28)
    rendered = render(noisy, np.arange(18), 1, 28)
    assert torch.equal(rendered[:6], clean)  # level 0 is the identity
    spread = [(rendered[6 * k:6 * k + 6] - clean).std() for k in (1, 2)]
    assert 0 < spread[0] < spread[1]
    # a stimulus renders the same whichever batch it is in
    assert torch.equal(render(noisy, np.array([13]), 1, 28)[0], rendered[13])
    with pytest.raises(StimulusError, match="unknown perturbation"):
        perturb(stimuli, "rotation", [10])


def test_perturbation_kinds_do_what_their_level_says():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 16, 16)
    assert torch.equal(apply(x, "contrast", 1.0, g), x)
    flat = apply(x, "contrast", 0.0, g)
    assert torch.allclose(flat, torch.full_like(x, float(x.mean())))
    assert apply(x, "blur", 2.0, g).std() < x.std()
    occluded = apply(x, "occlusion", 0.25, g)
    assert (occluded == 0.5).float().mean() == pytest.approx(0.25, abs=0.02)


def test_adversarial_stimuli_stay_within_eps_and_need_the_model():
    torch.manual_seed(0)
    stimuli = perturb(_toy_set(), "adversarial", [0.0, 0.1])
    with pytest.raises(StimulusError, match="need the model"):
        render(stimuli, np.arange(12), 1, 28)
    out = render(stimuli, np.arange(12), 1, 28, model=fmnist_small())
    clean = out[:6]
    assert (out[6:] - clean).abs().max() <= 0.1 + 1e-6 and (out[6:] - clean).abs().max() > 0.05


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_a_written_set_reads_back_as_the_same_stimuli(tmp_path, channels, size):
    """Rendered once (noise applied), read back without being perturbed a second time."""
    stimuli = perturb(_toy_set(), "noise", [0.0, 0.3], seed=3)
    csv = write_folder(stimuli, tmp_path / "set", channels, size, progress=False)
    again = from_folder(tmp_path / "set")
    rows = np.arange(len(stimuli))
    expected = render(stimuli, rows, channels, size)
    np.testing.assert_allclose(render(again, rows, channels, size), expected, atol=0.5 / 255 + 1e-6)
    table = pd.read_csv(csv)
    assert list(table["stimulus_id"]) == list(stimuli.metadata["stimulus_id"])
    assert table["rendered"].all() and set(table["level"]) == {0.0, 0.3}
    assert list(again.metadata["source_id"]) == list(stimuli.metadata["source_id"])
