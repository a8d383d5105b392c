"""Attacks and the robustness evaluation: budgets, strength, SPSA, targets, masking report."""

import pandas as pd
import pytest
import torch
from torch import nn

from neurocnnf.attacks import fgsm, logits_fn, pgd
from neurocnnf.attacks.evaluate import (
    AttackSpec,
    evaluate,
    format_report,
    make_adversarial,
    markdown,
    masking_report,
    paper_table,
    predict,
)
from neurocnnf.attacks.spsa import margin_loss, spsa, spsa_gradient
from neurocnnf.data import fashion_mnist
from neurocnnf.models import fmnist_small
from neurocnnf.train import config_from_dict, load_model, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """FMNIST-small CNN-F (T=1) and its CNN twin, trained briefly on real data."""
    out = tmp_path_factory.mktemp("runs")
    models = {}
    for t in (1, 0):
        config = config_from_dict({
            "name": f"t{t}", "seed": 0, "device": "cpu",
            "model": {"arch": "fmnist_small", "iterations": t},
            "data": {"train_limit": 1536, "test_limit": 100},
            "optim": {"optimizer": "adam", "lr": 0.003, "weight_decay": 0.0, "batch_size": 64,
                      "epochs": 2, "schedule": "cosine", "grad_clip": 1.0}})
        train(config, out / f"t{t}", progress=False)
        models[t] = load_model(out / f"t{t}")
    test = fashion_mnist("test")
    return models[1], models[0], test.images[:96].float() / 255, test.labels[:96]


def test_every_attack_respects_the_budget_and_the_box():
    torch.manual_seed(0)
    model, twin = fmnist_small(iterations=1).eval(), fmnist_small(iterations=0).eval()
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    generator = torch.Generator().manual_seed(0)
    for attack, steps in [("fgsm", 0), ("pgd", 3), ("spsa", 2), ("apgd-ce", 3), ("apgd-t", 3),
                          ("square", 20), ("transfer", 3)]:
        for target in ("first", "e2e"):
            spec = AttackSpec(attack, 0.05, target, steps)
            adv = make_adversarial(spec, model, x, y, "avg", generator, twin)
            assert adv.shape == x.shape, attack
            assert (adv - x).abs().max() <= 0.05 + 1e-6, attack
            assert adv.min() >= 0 and adv.max() <= 1, attack


def test_bad_attack_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"eps must be in \[0, 1\]"):
        AttackSpec("pgd", 2.0)
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        AttackSpec("cw", 0.1)
    with pytest.raises(ValueError, match="unknown attack target"):
        logits_fn(fmnist_small(), "middle")


@pytest.mark.data
def test_pgd_drives_a_trained_model_far_below_clean(trained):
    model, _, x, y = trained
    clean = (predict(model, x, "last") == y).float().mean()
    fn = logits_fn(model, "e2e", "last")
    adv = pgd(fn, x, y, eps=0.3, step_size=0.05, steps=20, generator=torch.Generator())
    robust = (predict(model, adv, "last") == y).float().mean()
    assert clean > 0.6 and robust < 0.1
    weak = (predict(model, fgsm(fn, x, y, 0.01), "last") == y).float().mean()
    assert weak > robust


def test_spsa_gradient_correlates_with_the_true_gradient():
    torch.manual_seed(0)
    weights = torch.randn(2, 50)
    x = torch.randn(2, 50, requires_grad=True)

    def smooth(z):  # (M, 50) -> (M,)
        return (torch.sin(z * weights.repeat(z.shape[0] // 2, 1)) + 0.1 * z**2).sum(1)

    (true,) = torch.autograd.grad(smooth(x).sum(), x)
    estimate = spsa_gradient(smooth, x.detach(), delta=0.01, samples=512,
                             generator=torch.Generator().manual_seed(1))
    cosine = torch.nn.functional.cosine_similarity(estimate, true, dim=1)
    assert (cosine > 0.5).all(), cosine


@pytest.mark.data
def test_spsa_finds_adversarial_examples_without_gradients(trained):
    model, _, x, y = trained
    fn = logits_fn(model, "first")
    x, y = x[:12], y[:12]
    adv = spsa(fn, x, y, eps=0.3, steps=10, samples=64, lr=0.05,
               generator=torch.Generator().manual_seed(0))
    before = (margin_loss(fn(x), y) > 0).float().mean()
    after = (margin_loss(fn(adv), y) > 0).float().mean()
    assert after < before - 0.3


def test_first_and_e2e_attacks_differ_on_an_iterating_model():
    torch.manual_seed(0)
    model = fmnist_small(iterations=2).eval()
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    first = pgd(logits_fn(model, "first"), x, y, 0.1, 0.02, 5, random_start=False)
    e2e = pgd(logits_fn(model, "e2e", "last"), x, y, 0.1, 0.02, 5, random_start=False)
    assert not torch.equal(first, e2e)
    # and the same seed gives the same adversarial examples
    a = pgd(logits_fn(model, "first"), x, y, 0.1, 0.02, 3, generator=torch.Generator()
            .manual_seed(4))
    b = pgd(logits_fn(model, "first"), x, y, 0.1, 0.02, 3, generator=torch.Generator()
            .manual_seed(4))
    assert torch.equal(a, b)


class GradientMasked(nn.Module):
    """A trained model behind an input whose gradient is exactly zero (obfuscated gradients)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.num_classes = inner.num_classes

    @property
    def iterations(self):
        return self.inner.iterations

    @iterations.setter
    def iterations(self, value):
        self.inner.iterations = value

    def forward(self, x, iterations=None, **kwargs):
        return self.inner(x.detach() + 0 * x, iterations=iterations, **kwargs)


@pytest.mark.data
def test_the_masking_report_flags_a_gradient_masked_model(trained):
    model, twin, x, y = trained
    specs = [AttackSpec("clean"), AttackSpec("fgsm", 0.1, "first"),
             AttackSpec("pgd", 0.1, "first", 10), AttackSpec("pgd", 0.1, "first", 3),
             AttackSpec("pgd", 0.5, "first", 10), AttackSpec("transfer", 0.1, "first", 10)]
    x, y = x[:48], y[:48]
    honest = masking_report(evaluate(model, x, y, specs, ("last",), twin=twin, progress=False))
    masked = masking_report(evaluate(GradientMasked(model), x, y, specs, ("last",), twin=twin,
                                     progress=False))
    failed = {c.name for c in masked if not c.passed}
    assert {"large eps -> ~0", "black-box >= white-box"} <= failed, format_report(masked)
    assert all(c.passed for c in honest), format_report(honest)


@pytest.mark.data
def test_evaluation_table_in_the_papers_shape(trained):
    model, twin, x, y = trained
    specs = [AttackSpec("clean"), AttackSpec("pgd", 0.1, "first", 5),
             AttackSpec("pgd", 0.1, "e2e", 5), AttackSpec("transfer", 0.1, "first", 5)]
    cnnf = evaluate(model, x[:32], y[:32], specs, twin=twin, progress=False, name="f")
    cnn = evaluate(twin, x[:32], y[:32], specs[:3], progress=False, name="c")
    assert set(cnnf["scoring"]) == {"last", "avg"} and set(cnn["scoring"]) == {"last"}
    # a plain CNN has one pass: its first and e2e attacks are one attack
    cnn_pgd = cnn[cnn.attack == "pgd"].set_index("target")["accuracy"]
    assert cnn_pgd["first"] == cnn_pgd["e2e"]
    table = paper_table(pd.concat([cnnf, cnn], ignore_index=True), 0.1)
    assert list(table.index) == ["CNN", "CNN-F (last)", "CNN-F (avg)"]
    assert list(table.columns) == ["Clean", "PGD (first)", "PGD (e2e)", "SPSA (first)",
                                   "SPSA (e2e)", "Transfer", "Min"]
    pgd_first = float(table.loc["CNN-F (last)", "PGD (first)"])
    expected = 100 * cnnf[(cnnf.attack == "pgd") & (cnnf.target == "first")
                          & (cnnf.scoring == "last")]["accuracy"].iloc[0]
    assert pgd_first == pytest.approx(expected, abs=0.01)
    assert markdown(table).startswith("|  | Clean | PGD (first)")
