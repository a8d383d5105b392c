"""Analyses recover known answers on synthetic data."""

import numpy as np
import pytest
from scipy import stats

from neurocnnf.analysis.cka import linear_cka
from neurocnnf.analysis.difficulty import (
    accuracy_gain_by_level,
    entropy_halting,
    first_correct_iteration,
    settling_iteration,
    spearman_with_ci,
    speed_accuracy,
)
from neurocnnf.analysis.rsa import (
    bootstrap_ci,
    compare,
    evaluate,
    kendall_tau_a,
    noise_ceiling,
    rdm,
)

RNG = np.random.default_rng(0)


def test_rdm_of_itself_is_one_and_of_a_shuffle_about_zero():
    patterns = RNG.standard_normal((40, 30))
    r = rdm(patterns)
    assert r.shape == (40, 40) and np.allclose(np.diag(r), 0) and np.allclose(r, r.T)
    assert compare(r, r) == pytest.approx(1.0)
    assert compare(r, r, "tau-a") == pytest.approx(1.0)
    assert compare(r, r, "corr") == pytest.approx(1.0)
    order = RNG.permutation(40)
    assert abs(compare(r, r[order][:, order])) < 0.15
    low, high = bootstrap_ci(r, [r + 0.05 * rdm(RNG.standard_normal((40, 30)))], n_boot=50)
    assert 0.5 < low <= high <= 1.0


def test_bootstrap_ci_brackets_the_estimate_and_narrows_with_more_stimuli():
    def pair(n):
        truth = rdm(RNG.standard_normal((n, 20)))
        return truth, [truth + 0.5 * rdm(RNG.standard_normal((n, 20))) for _ in range(3)]

    widths = []
    for n in (20, 80):
        model, subjects = pair(n)
        low, high = bootstrap_ci(model, subjects, "tau-a", n_boot=100)
        assert low < evaluate(model, subjects, "tau-a") < high
        widths.append(high - low)
    assert widths[1] < widths[0]


def test_kendall_is_refused_with_the_name_to_use():
    r = rdm(RNG.standard_normal((10, 5)))
    with pytest.raises(ValueError, match="use method 'tau-a'"):
        compare(r, r, "kendall")
    with pytest.raises(ValueError, match="spearman, tau-a, corr"):
        noise_ceiling([r, r], "pearson")


def test_the_cli_refuses_kendall_before_reading_anything(tmp_path):
    from typer.testing import CliRunner

    from neurocnnf.cli import app

    result = CliRunner().invoke(app, ["analyze", "neural", "--model", "CNN=missing.safetensors",
                                      "--dataset", "algonauts92", "--out",
                                      str(tmp_path / "out"), "--method", "kendall"])
    assert result.exit_code != 0 and "use method 'tau-a'" in result.output


def test_tau_a_matches_scipy_without_ties():
    a, b = RNG.standard_normal(300), RNG.standard_normal(300)
    b = a + b
    assert kendall_tau_a(a, b) == pytest.approx(stats.kendalltau(a, b)[0], abs=1e-9)


def test_noise_ceiling_brackets_the_true_model():
    truth = rdm(RNG.standard_normal((30, 20)))
    subjects = [truth + 0.3 * rdm(RNG.standard_normal((30, 20))) for _ in range(4)]
    for method in ("spearman", "tau-a", "corr"):
        lower, upper = noise_ceiling(subjects, method)
        assert 0.2 < lower < upper < 1
        # the true RDM scores between the bounds; a noisier model scores below the lower one
        assert lower < evaluate(truth, subjects, method) < upper
        noisier = truth + 1.0 * rdm(RNG.standard_normal((30, 20)))
        assert evaluate(noisier, subjects, method) < lower


def test_cka_is_one_under_rotation_and_near_zero_for_independent_data():
    x = RNG.standard_normal((100, 20))
    rotation, _ = np.linalg.qr(RNG.standard_normal((20, 20)))
    assert linear_cka(x, 3.0 * x @ rotation) == pytest.approx(1.0, abs=1e-9)
    assert abs(linear_cka(x, RNG.standard_normal((100, 20)))) < 0.05
    assert linear_cka(x, RNG.standard_normal((100, 20)), debiased=False) > 0.1  # biased


def _planted_logits(settle, steps=5, classes=4, label=0):
    """Logits that move until iteration settle[i], then stay fixed; correct from then on."""
    n = len(settle)
    logits = np.zeros((n, steps + 1, classes))
    for i, s in enumerate(settle):
        for t in range(steps + 1):
            wrong = np.eye(classes)[1] * 0.3 * (1 + t)  # uncertain, keeps changing
            right = np.eye(classes)[label] * 10
            logits[i, t] = right if t >= s else wrong
    return logits


def test_a_planted_halting_pattern_is_recovered():
    settle = np.array([0, 1, 2, 3, 5, 0])
    logits = _planted_logits(settle)
    assert settling_iteration(logits).tolist() == settle.tolist()
    assert first_correct_iteration(logits, np.zeros(6, int)).tolist() == settle.tolist()
    probabilities = np.exp(logits) / np.exp(logits).sum(2, keepdims=True)
    assert entropy_halting(probabilities, 0.01).tolist() == settle.tolist()
    curve = speed_accuracy(probabilities, np.zeros(6, int), np.array([0.001, 10.0]))
    assert curve["mean_iterations"].iloc[0] > curve["mean_iterations"].iloc[1]
    assert curve["accuracy"].iloc[0] >= curve["accuracy"].iloc[1]


def test_harder_items_taking_longer_is_detected():
    level = np.repeat([0.0, 0.1, 0.2, 0.4], 25)
    iterations = np.round(level * 10 + RNG.normal(0, 0.5, 100))
    result = spearman_with_ci(level, iterations)
    assert result["rho"] > 0.7 and result["ci_low"] > 0.5
    logits = _planted_logits(np.repeat([0, 6], 50))
    table = accuracy_gain_by_level(logits, np.zeros(100, int), np.repeat(["easy", "hard"], 50))
    assert table.set_index("level").loc["easy", "first"] == 1.0


def test_repeated_measures_resample_whole_images():
    """Each image's row repeated at 5 levels carries no more information than the image once:
    resampling whole images gives the interval of the images alone; rows resampled as if
    independent give a narrower, overconfident one."""
    x, y = RNG.normal(size=40), RNG.normal(size=40)
    x, y = x + 0.5 * y, y
    images = np.repeat(np.arange(40), 5)
    alone = spearman_with_ci(x, y, seed=1)
    grouped = spearman_with_ci(x[images], y[images], seed=1, groups=images)
    rows = spearman_with_ci(x[images], y[images], seed=1)
    assert grouped["rho"] == pytest.approx(alone["rho"], abs=1e-12)
    assert (grouped["ci_low"], grouped["ci_high"]) == pytest.approx(
        (alone["ci_low"], alone["ci_high"]), abs=1e-12)
    assert grouped["n_groups"] == 40 and rows["n_groups"] == 200
    assert rows["ci_high"] - rows["ci_low"] < 0.7 * (grouped["ci_high"] - grouped["ci_low"])


def test_iteration_cka_is_symmetric_one_on_the_diagonal_and_tracks_change():
    from neurocnnf.analysis.cka import iteration_cka, iteration_cka_table

    start = RNG.standard_normal((60, 30))
    rotation, _ = np.linalg.qr(RNG.standard_normal((30, 30)))
    # t=1 a rotation of t=0 (CKA 1), t=2 unrelated to both (CKA about 0)
    values = np.stack([start, start @ rotation, RNG.standard_normal((60, 30))], 1)
    matrix = iteration_cka(values)
    assert np.allclose(matrix, matrix.T) and np.allclose(np.diag(matrix), 1)
    assert matrix[0, 1] == pytest.approx(1.0, abs=1e-9) and abs(matrix[0, 2]) < 0.1
    table = iteration_cka_table({"CNN-F": {"conv1": values, "conv1_feedback": values},
                                 "CNN": {"conv1": values[:, :1]}})  # no iterations: left out
    assert set(table["model"]) == {"CNN-F"} and set(table["layer"]) == {"conv1"}
    assert len(table) == 9 and table.query("iteration_a == 0 and iteration_b == 1")[
        "cka"].item() == pytest.approx(matrix[0, 1])


@pytest.mark.data
def test_difficulty_run_writes_tables_and_figures(tmp_path):
    import torch

    from neurocnnf.activations import extract
    from neurocnnf.models import fmnist_small
    from neurocnnf.pipelines.difficulty import run_difficulty
    from neurocnnf.stimuli import load_stimuli, perturb

    torch.manual_seed(0)
    model = fmnist_small(iterations=2).eval()
    noisy = perturb(load_stimuli("fashion_mnist:test:40"), "noise", [0.0, 0.3])
    store = extract(model, noisy, tmp_path / "d.nc", layers=["logits", "probabilities"],
                    progress=False)
    summary = run_difficulty(store, tmp_path / "difficulty")
    assert set(summary["mean_settling_by_level"]) == {0.0, 0.3}
    assert (tmp_path / "difficulty" / "difficulty.png").exists()
