"""neurocnnf's own APGD-CE, APGD-DLR, APGD-T and Square equal torchattacks 3.5.1's, image for
image, given the same seed, on a trained network (the CNN-F's plain twin: the attacks see only
a logits function, so a cheap one tests them as well) and real Fashion-MNIST test images.

torchattacks is the reference here only: ``make install`` puts it outside the environment's
installed packages (``pip install --no-deps --target .venv/reference``), so that its metadata
(requests 2.25, torchvision) never enters the environment that ``pip check`` checks."""

import sys
from pathlib import Path

import pytest
import torch

from neurocnnf import pretrained
from neurocnnf.attacks import autoattack
from neurocnnf.attacks.pgd import logits_fn
from neurocnnf.pipelines import robustness

pytestmark = pytest.mark.slow  # 1-3 minutes on 2 busy cores
REFERENCE = Path(sys.prefix) / "reference"
if REFERENCE.is_dir() and str(REFERENCE) not in sys.path:
    sys.path.append(str(REFERENCE))
torchattacks = pytest.importorskip("torchattacks")


class Scored(torch.nn.Module):
    """The logits aimed at, as the nn.Module torchattacks wants."""

    def __init__(self, logits) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)


@pytest.fixture(scope="module")
def setting():
    model = pretrained.load("fmnist-small-cnn").eval()
    x, y = robustness.test_images("fashion_mnist", 12)
    return logits_fn(model, "first", "last", model.iterations), x, y


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_equals_torchattacks(setting, loss):
    logits, x, y = setting
    ours = autoattack.run_apgd(logits, x, y, eps=0.05, steps=10, restarts=2, seed=7, loss=loss)
    theirs = torchattacks.APGD(Scored(logits), eps=0.05, steps=10, n_restarts=2, seed=7,
                               loss=loss)(x, y)
    assert torch.equal(ours, theirs.detach())
    assert not torch.equal(ours, x) and (ours - x).abs().max() <= 0.05 + 1e-6


def test_targeted_apgd_equals_torchattacks(setting):
    logits, x, y = setting
    ours = autoattack.run_apgd_targeted(logits, x, y, eps=0.03, steps=4, n_classes=10, seed=3)
    theirs = torchattacks.APGDT(Scored(logits), eps=0.03, steps=4, n_classes=10, seed=3)(x, y)
    assert torch.equal(ours, theirs.detach()) and not torch.equal(ours, x)


def test_square_equals_torchattacks(setting):
    logits, x, y = setting
    ours = autoattack.run_square(logits, x, y, eps=0.2, queries=30, restarts=2, seed=5)
    theirs = torchattacks.Square(Scored(logits), eps=0.2, n_queries=30, n_restarts=2,
                                 seed=5)(x, y)
    assert torch.equal(ours, theirs.detach()) and not torch.equal(ours, x)
    assert ours.min() >= 0 and ours.max() <= 1 and (ours - x).abs().max() <= 0.2 + 1e-6
