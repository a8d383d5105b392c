"""Human uncertainty (CIFAR-10H) against model iterations: planted truth on synthetic
distributions, and the pipeline end to end on real CIFAR-10H with an untrained vgg6."""

import numpy as np
import pandas as pd
import pytest

from neurocnnf.analysis import human_uncertainty as hu

RNG = np.random.default_rng(0)


def _human(n=400, classes=10):
    return RNG.dirichlet(np.full(classes, 0.3), n)


def test_cross_entropy_is_lowest_for_the_human_distribution_itself():
    human = _human()
    uniform = np.full_like(human, 0.1)
    model = np.stack([uniform, human], 1)  # iteration 0 uniform, iteration 1 = the humans
    ce = hu.cross_entropy(human, model)
    entropy = -(human * np.log(np.clip(human, 1e-12, 1))).sum(1)
    assert np.allclose(ce[:, 1], entropy) and np.allclose(ce[:, 0], np.log(10))


def test_a_planted_improvement_over_iterations_is_found_and_a_null_is_not():
    human = _human()
    noise = RNG.dirichlet(np.ones(10), len(human))
    closer = np.stack([0.2 * human + 0.8 * noise, 0.8 * human + 0.2 * noise], 1)
    same = np.stack([0.5 * human + 0.5 * noise, 0.5 * human + 0.5 * noise[::-1]], 1)
    table, comparisons = hu.per_iteration({"CNN-F": closer, "null": same}, human, n_boot=300)
    planted = comparisons[(comparisons["quantity"] == "cross_entropy")
                          & (comparisons["a"] == "CNN-F t=1") & (comparisons["b"] == "CNN-F t=0")]
    assert planted["ci_high"].iloc[0] < 0 and planted["p"].iloc[0] < 0.01
    null = hu.per_iteration({"null": same}, human, n_boot=300)[1]
    null_ce = null[(null["quantity"] == "cross_entropy") & (null["b"] == "null t=0")]
    assert null_ce["ci_low"].iloc[0] < 0 < null_ce["ci_high"].iloc[0]
    assert set(table["quantity"]) == {"cross_entropy", "agreement_disputed"}


def test_image_bootstrap_pairs_columns_and_covers_the_mean():
    values = RNG.normal(size=(300, 2))
    values[:, 1] = values[:, 0] + 1.0  # a constant difference: zero width when paired
    boots = hu.image_bootstrap(values, 200)
    assert np.allclose(boots[:, 1] - boots[:, 0], 1.0)
    low, high = np.quantile(boots[:, 0], [0.025, 0.975])
    assert low < 0 < high


@pytest.mark.data
def test_pipeline_writes_tables_and_figures(tmp_path):
    import torch

    from neurocnnf.models import build_model
    from neurocnnf.pipelines.human_uncertainty import run_human_uncertainty
    from neurocnnf.train.checkpoint import save_model

    torch.manual_seed(0)
    cnnf, twin = build_model("vgg6", iterations=2), build_model("vgg6", iterations=0)
    save_model(cnnf, tmp_path / "cnnf.safetensors")
    save_model(twin, tmp_path / "twin.safetensors")
    summary = run_human_uncertainty({"CNN-F": str(tmp_path / "cnnf.safetensors"),
                                     "CNN": str(tmp_path / "twin.safetensors")},
                                    tmp_path / "out", iterations=2, n_images=120, n_boot=50)
    per_image = pd.read_csv(tmp_path / "out" / "per_image.csv")
    assert len(per_image) == 120 and per_image["test_index"].is_unique
    assert per_image["CNN-F_settling"].between(0, 3).all()
    assert per_image["CNN-F_halted_at"].between(0, 2).all() and "CNN_settling" not in per_image
    table = pd.read_csv(tmp_path / "out" / "per_iteration.csv")
    assert set(zip(table["model"], table["iteration"], strict=True)) == {
        ("CNN-F", 0), ("CNN-F", 1), ("CNN-F", 2), ("CNN", 0)}
    assert summary["n_images"] == 120 and summary["entropy_vs_iteration"][0]["model"] == "CNN-F"
    for name in ("entropy_vs_settling", "cross_entropy_vs_iteration"):
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 10_000
