"""Fig. 6 visualizations: restoration, decision cells, Grad-CAM per iteration."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import labelled_set

from neurocnnf.models import fmnist_adv, fmnist_small
from neurocnnf.stimuli.perturb import apply
from neurocnnf.viz.feedback import (
    decision_cells_data,
    grad_cam_data,
    match_scale,
    plot_decision_cells,
    plot_grad_cam,
    plot_restoration,
    plot_restoration_distance,
    principal_directions,
    restoration_data,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return fmnist_small(iterations=3).eval()


def test_restoration_arrays_and_the_distance_is_the_reconstruction_loss(model):
    clean = torch.rand(5, 1, 28, 28)
    generator = torch.Generator().manual_seed(0)
    noisy = torch.stack([apply(x, "noise", 0.3, generator) for x in clean])
    data = restoration_data(model, clean, {"noise": noisy})
    assert data["reconstruction"].shape == (2, 5, 4, 1, 28, 28)
    assert data["prediction"].shape == (2, 5, 4) and data["confidence"].max() <= 1
    assert float(data["distance_to_clean"].sel(kind="clean", iteration=0).max()) == 0.0
    with torch.no_grad():
        h_clean = model(clean, iterations=0).h
        trace = model(noisy)
    for t in range(4):
        expected = [F.mse_loss(trace.h_hat[t][i], h_clean[i]).item() for i in range(5)]
        np.testing.assert_allclose(data["distance_to_clean"].sel(kind="noise").values[:, t],
                                   expected, rtol=1e-5)
    plot_restoration(data)
    plot_restoration_distance(data)


def test_decoded_reconstruction_passes_through_the_transposed_encoder():
    torch.manual_seed(0)
    model = fmnist_adv(iterations=1).eval()
    with torch.no_grad():
        trace = model(torch.rand(2, 1, 28, 28), decode=True)
    assert [tuple(d.shape) for d in trace.decoded] == [(2, 1, 28, 28)] * 2
    assert not torch.equal(trace.decoded[0], trace.decoded[1])


def test_decision_cell_grid_reproduces_the_models_predictions(model):
    image = torch.rand(1, 28, 28)
    directions = principal_directions(torch.rand(50, 1, 28, 28))
    assert directions.shape == (2, 784)
    data = decision_cells_data(model, image, directions, extent=4.0, resolution=5)
    assert data["prediction"].shape == (5, 5)
    i, j = 1, 3
    point = image + data["a"].values[i] * directions[0].view(1, 28, 28) \
        + data["b"].values[j] * directions[1].view(1, 28, 28)
    with torch.no_grad():
        own = int(model(point[None]).last.argmax())
    assert own == int(data["prediction"].values[i, j])
    plot_decision_cells(data)


def _region_model():
    """FMNIST-small whose class-0 logit reads only the top-left 3x3 of conv2's pooled map."""
    torch.manual_seed(0)
    model = fmnist_small(iterations=1).eval()
    with torch.no_grad():
        weight = model.body.layers[8].weight  # (10, 64 * 7 * 7)
        mask = torch.zeros(64, 7, 7)
        mask[:, :3, :3] = 1
        weight.mul_(mask.flatten()[None])
        weight[0] = mask.flatten() * 0.1
    return model


def test_grad_cam_highlights_the_region_the_logit_depends_on():
    model = _region_model()
    images = torch.full((4, 1, 28, 28), 0.5)  # mid-grey: zero after the model's normalization
    images[:, :, 2:10, 2:10] = 1.0   # an object in the region the logit reads
    images[:, :, 18:26, 18:26] = 1.0  # and one it ignores
    target = torch.zeros(4, dtype=torch.long)
    cams = grad_cam_data(model, images, "conv2", target, method="hirescam")
    assert cams.shape == (4, 2, 28, 28) and cams.min() >= 0 and cams.max() <= 1
    inside = cams.values[..., :14, :14].sum() / cams.values.sum()
    assert inside > 0.9
    only = torch.full((2, 1, 28, 28), 0.5)
    only[:, :, 2:10, 2:10] = 1.0
    gradcam = grad_cam_data(model, only, "conv2", target[:2])
    assert gradcam.values[..., :14, :14].sum() / gradcam.values.sum() > 0.9
    plot_grad_cam(only, gradcam, np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="unknown CAM method"):
        grad_cam_data(model, only, "conv2", method="cam++")


def test_decoded_images_are_shown_on_the_inputs_scale_with_their_pattern_kept():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0, 1, (1, 8, 8))
    decoded = 40.0 * rng.normal(size=(1, 8, 8)) - 7.0  # feature scale, far outside [0, 1]
    shown = match_scale(decoded, reference)
    assert np.isclose(shown.mean(), reference.mean()) and np.isclose(shown.std(), reference.std())
    assert np.corrcoef(shown.ravel(), decoded.ravel())[0, 1] > 0.999999  # same pattern, same sign
    flat = match_scale(np.full((1, 8, 8), 3.0), reference)
    assert np.allclose(flat, reference.mean())


def test_figure6_inputs_come_from_the_stimulus_set_with_per_stimulus_seeds(model):
    """Fig. 6's perturbed images are perturb + render: the same tensors the old loop made for
    the deterministic kinds (blur), and per stimulus (seed * 1_000_003 + row) instead of one
    generator over the whole batch for the random ones (a deliberate change: an image's noise
    no longer depends on which images were drawn with it)."""
    from neurocnnf.pipelines.figure6 import PERTURBATIONS, perturbed_versions
    from neurocnnf.stimuli import render

    stimuli = labelled_set(6, seed=3, image_seed=1)
    clean = stimuli.images.float() / 255
    torch.testing.assert_close(render(stimuli, np.arange(6), 1, 28), clean)
    versions = perturbed_versions(model, stimuli, eps=0.1)
    assert set(versions) == {*PERTURBATIONS, "adversarial"}
    old_blur = torch.stack([apply(x, "blur", 1.5, torch.Generator().manual_seed(3))
                            for x in clean])
    assert torch.equal(versions["blur"], old_blur)
    for kind in ("noise", "occlusion"):
        per_stimulus = torch.stack([
            apply(x, kind, PERTURBATIONS[kind], torch.Generator().manual_seed(3 * 1_000_003 + i))
            for i, x in enumerate(clean)])
        assert torch.equal(versions[kind], per_stimulus), kind
    assert not torch.equal(versions["noise"][0] - clean[0], versions["noise"][1] - clean[1])
    step = (versions["adversarial"] - clean).abs().amax(dim=(1, 2, 3))
    assert (step <= 0.1 + 1e-6).all() and (step > 0.05).all()
    again = perturbed_versions(model, stimuli, eps=0.1)
    assert all(torch.equal(versions[k], again[k]) for k in versions)  # seeded: reproducible


@pytest.mark.data
def test_figure6_run_writes_its_data_and_figures(model, tmp_path):
    from neurocnnf.pipelines.figure6 import run_figure6

    written = run_figure6(model, tmp_path, n_show=2, n_stats=12)
    for name in ("restoration.nc", "decision_cells.nc", "gradcam.nc", "summary.txt"):
        assert (tmp_path / name).stat().st_size > 0
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in written.values())
    summary = (tmp_path / "summary.txt").read_text()
    assert all(f"  {kind}:" in summary for kind in ("noise", "blur", "occlusion", "adversarial"))
