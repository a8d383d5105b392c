"""CIFAR-10-C corruptions generated in the package: identity at severity 0, CIFAR-10-C's
kernels, each severity moving a measured image statistic monotonically, seeded per image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurocnnf.stimuli.corruptions import (
    CORRUPTIONS,
    CorruptionError,
    corrupt,
    disk_kernel,
)


@pytest.fixture(scope="module")
def images(cifar10_test) -> torch.Tensor:
    return cifar10_test.images[:64].float() / 255


def _high_frequency(x: torch.Tensor) -> float:
    """Mean absolute Laplacian: falls as an image blurs."""
    laplace = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(x, laplace, groups=x.shape[1]).abs().mean().item()


# the statistic each corruption moves, and the direction as severity rises
STATISTICS = {
    "gaussian_noise": (lambda x, clean: (x - clean).square().mean().item(), +1),
    "defocus_blur": (lambda x, clean: _high_frequency(x), -1),
    "contrast": (lambda x, clean: x.std((2, 3)).mean().item(), -1),
    "jpeg": (lambda x, clean: (x - clean).square().mean().item(), +1),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_severity_zero_is_the_identity(images, name):
    assert torch.equal(corrupt(images, name, 0), images)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_severity_moves_its_statistic_monotonically(images, name):
    statistic, direction = STATISTICS[name]
    values = [statistic(corrupt(images, name, s), images) for s in range(6)]
    steps = [direction * (b - a) for a, b in zip(values[:-1], values[1:], strict=True)]
    assert all(step > 0 for step in steps), (name, values)
    out = corrupt(images, name, 5)
    assert out.shape == images.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def test_disk_kernel_is_cifar10c_defocus_kernel():
    # radius 0.3 keeps the centre only; the 3x3 Gaussian (sigma 0.4) then spreads it
    kernel = disk_kernel(0.3, 0.4)
    taps = torch.exp(-torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64) / (2 * 0.4 ** 2))
    taps /= taps.sum()
    assert kernel.shape == (17, 17)
    assert kernel.sum().item() == pytest.approx(1.0)
    assert kernel[8, 8].item() == pytest.approx(taps[1].item() ** 2)
    assert kernel[8, 7].item() == pytest.approx((taps[0] * taps[1]).item())
    assert kernel[0, 0].item() == 0
    # radius 1.5: the centre and its 8 neighbours (1 + 1 <= 2.25), then 4 more at distance 1
    assert int((disk_kernel(1.5, 1e-3) > 1e-6).sum()) == 9


def test_noise_is_seeded_per_image(images):
    whole = corrupt(images[:8], "gaussian_noise", 3, seed=1)
    tail = corrupt(images[4:8], "gaussian_noise", 3, seed=1, first_index=4)
    assert torch.equal(whole[4:], tail)
    assert not torch.equal(whole, corrupt(images[:8], "gaussian_noise", 3, seed=2))


@pytest.mark.parametrize("name, severity, message", [
    ("fog", 1, "unknown corruption 'fog'"),
    ("jpeg", 6, "severity must be an integer in 0-5"),
    ("jpeg", True, "severity must be an integer in 0-5"),
])
def test_bad_requests_name_the_problem(images, name, severity, message):
    with pytest.raises(CorruptionError, match=message):
        corrupt(images, name, severity)


def test_corruption_evaluation_reads_each_pass_as_a_run_of_that_many(tmp_path, cifar10_test):
    from neurocnnf.models import build_model
    from neurocnnf.pipelines.corruptions import RESULTS, correct_by_iteration, run_corruptions

    data = cifar10_test.subset(torch.arange(24))
    torch.manual_seed(0)
    cnnf = build_model("vgg6", iterations=2, width=8)
    twin = build_model("vgg6", iterations=0, width=8)
    x = data.images.float() / 255
    correct = correct_by_iteration(cnnf, x, data.labels, 3, batch_size=10)
    for t in range(4):
        alone = cnnf(x, iterations=t).last.argmax(1) == data.labels
        assert np.array_equal(correct[t], alone.numpy())
    table = run_corruptions({"CNN-F": cnnf, "CNN": twin}, data, tmp_path,
                            {"CNN-F": 2, "CNN": 0}, iterations=(0, 2),
                            corruptions=("contrast", "jpeg"), progress=False)
    # clean once, then 2 corruptions x 5 severities; 2 models x 2 iteration counts each
    assert len(table) == (1 + 2 * 5) * 2 * 2
    assert set(table["corruption"]) == {"none", "contrast", "jpeg"}
    assert (table["n"] == 24).all() and table["accuracy"].between(0, 1).all()
    for name in (RESULTS, "corruptions.png", "corruptions_iterations.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_plain_models_alone_get_the_severity_figure_only(tmp_path, cifar10_test):
    """A zoo with no feedback model yet: no accuracy-by-iterations figure, and asking the plot
    for one names the problem."""
    from neurocnnf.models import build_model
    from neurocnnf.pipelines.corruptions import ITERATIONS_FIGURE, run_corruptions
    from neurocnnf.viz.corruptions import accuracy_by_iteration

    data = cifar10_test.subset(torch.arange(8))
    twin = build_model("vgg6", iterations=0, width=8)
    table = run_corruptions({"CNN": twin}, data, tmp_path, {"CNN": 0}, iterations=(0,),
                            corruptions=("contrast",), progress=False)
    assert (tmp_path / "corruptions.png").stat().st_size > 0
    assert not (tmp_path / ITERATIONS_FIGURE).exists()
    with pytest.raises(ValueError, match="needs a model with feedback"):
        accuracy_by_iteration(table, {"CNN": 0})
