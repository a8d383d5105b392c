"""Paired comparisons of two models on the same images: packing per-image correctness, the
interval and test of the difference, and the table ``neurocnnf evaluate`` writes with them."""

import io

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from neurocnnf.attacks import AttackSpec
from neurocnnf.attacks.evaluate import evaluate
from neurocnnf.attacks.paired import (
    over_models,
    pack,
    paired_difference,
    paired_markdown,
    paired_table,
    unpack,
    wilson,
)
from neurocnnf.models import fmnist_small


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000])
def test_per_image_correctness_packs_and_unpacks_exactly(n):
    correct = np.random.default_rng(n).random(n) < 0.5
    text = pack(correct)
    assert text.startswith(f"{n}:") and unpack(text).tolist() == correct.tolist()
    assert unpack(pack(torch.from_numpy(correct))).tolist() == correct.tolist()
    # a CSV round trip keeps it text, even when every image is wrong (all-zero digits)
    for column in (text, pack(np.zeros(n, bool))):
        frame = pd.DataFrame({"correct": [column]})
        assert pd.read_csv(io.StringIO(frame.to_csv(index=False)))["correct"][0] == column
    for bad in (f"{n + 8}:{text.partition(':')[2]}", "12:zz", "0012", "nan"):
        with pytest.raises(ValueError, match="correctness"):
            unpack(bad)


def _pair(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.repeat([True, True, False, False], [both, only_a, only_b, neither])
    b = np.repeat([True, False, True, False], [both, only_a, only_b, neither])
    return a, b


def test_the_difference_counts_discordant_images_and_mcnemar_is_exact():
    a, b = _pair(50, 30, 10, 10)
    found = paired_difference(a, b)
    assert (found.only_a, found.only_b, found.n) == (30, 10, 100)
    assert found.difference == pytest.approx(0.2)
    assert found.low < 0.2 < found.high and found.low >= -1 and found.high <= 1
    assert found.p == pytest.approx(stats.binomtest(30, 40, 0.5).pvalue)
    swapped = paired_difference(b, a)  # B minus A mirrors the interval
    assert (swapped.low, swapped.high) == pytest.approx((-found.high, -found.low))
    same = paired_difference(a, a)
    assert same.difference == 0 and same.low <= 0 <= same.high and same.p == 1.0


def test_pairing_narrows_the_interval_when_the_models_agree_on_most_images():
    # 1,000 images, 60 % vs 57 %: 30 discordant images; independent Wilson intervals would
    # each be +-3 pp wide and overlap
    a, b = _pair(570, 30, 0, 400)
    found = paired_difference(a, b)
    (l1, u1), (_, u2) = wilson(600, 1000), wilson(570, 1000)
    assert l1 < u2  # the separate intervals overlap
    assert found.low > 0 and found.p < 1e-6  # the paired one excludes 0
    assert found.high - found.low < (u1 - l1)


def test_the_interval_covers_the_true_difference_at_its_level():
    """Simulated correlated pairs with a known difference: ~95 % of intervals cover it."""
    rng = np.random.default_rng(0)
    n, trials, p_a, p_b = 200, 1000, 0.30, 0.25
    covered = 0
    for _ in range(trials):
        shared = rng.random(n)  # a common image difficulty makes the two correlated
        a = shared < p_a
        b = np.where(rng.random(n) < 0.7, shared < p_b, rng.random(n) < p_b)
        found = paired_difference(a, b)
        covered += found.low <= p_a - p_b <= found.high
    assert 0.93 <= covered / trials <= 0.985


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="same images"):
        paired_difference(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError, match="same images"):
        paired_difference(np.ones(0, bool), np.ones(0, bool))


def test_evaluate_keeps_per_image_correctness_that_matches_its_accuracy():
    torch.manual_seed(0)
    model, twin = fmnist_small(iterations=1).eval(), fmnist_small(iterations=0).eval()
    x, y = torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,))
    specs = [AttackSpec("clean"), AttackSpec("fgsm", 0.1, "first"),
             AttackSpec("pgd", 0.1, "e2e", 3)]
    cnnf = evaluate(model, x, y, specs, scorings=("last",), progress=False, name="f")
    cnn = evaluate(twin, x, y, specs, progress=False, name="c")
    for _, row in pd.concat([cnnf, cnn]).iterrows():
        assert unpack(row["correct"]).mean() == pytest.approx(row["accuracy"])
    results = pd.concat([cnnf.assign(twin="c"), cnn.assign(twin="")], ignore_index=True)
    table = paired_table(results, 0.1)
    # clean, FGSM, PGD and the per-image worst case, each against the twin's own row
    assert sorted(table["attack"]) == ["clean", "fgsm", "pgd", "worst-case"]
    for _, row in table.iterrows():
        mine = cnnf[(cnnf.attack == row["attack"]) & (cnnf.steps == row["steps"])]
        theirs = cnn[(cnn.attack == row["attack"]) & (cnn.steps == row["steps"])]
        expected = 100 * (mine["accuracy"].iloc[0] - theirs["accuracy"].iloc[0])
        assert row["difference_pp"] == pytest.approx(expected)
        assert row["low_pp"] <= row["difference_pp"] <= row["high_pp"]
    assert paired_table(results.drop(columns="correct"), 0.1).empty  # older results: no table


def test_over_models_summarises_seeds_with_a_t_interval():
    """Three seeds, each CNN-F against its own twin on 400 images: the summary's mean is the
    mean of the three paired differences and its interval is scipy's t interval over them."""
    rng = np.random.default_rng(3)
    rows = []
    for seed, gain in enumerate((0.02, 0.05, 0.08)):
        twin = rng.random(400) < 0.3
        model = twin | (rng.random(400) < gain)
        for name, correct, partner, iterations in ((f"f{seed}", model, f"c{seed}", 5),
                                                   (f"c{seed}", twin, "", 0)):
            rows.append({"model": name, "twin": partner, "iterations": iterations,
                         "scoring": "last", "attack": "pgd", "target": "e2e", "steps": 40,
                         "eps": 0.05, "n": 400, "accuracy": correct.mean(),
                         "correct": pack(correct)})
    table = paired_table(pd.DataFrame(rows), 0.05)
    summary = over_models(table)
    assert len(table) == 3 and len(summary) == 1
    row, differences = summary.iloc[0], table["difference_pp"].to_numpy()
    assert row["models"] == 3 and row["mean_pp"] == pytest.approx(differences.mean())
    low, high = stats.t.interval(0.95, 2, differences.mean(), stats.sem(differences))
    assert (row["low_pp"], row["high_pp"]) == pytest.approx((low, high))
    assert row["t_p"] == pytest.approx(stats.ttest_1samp(differences, 0).pvalue)
    assert "Over the CNN-F models (seeds)" in paired_markdown(table)
    one = table.iloc[:1]  # a single seed has no spread to summarise
    assert over_models(one).empty and "Over the CNN-F models" not in paired_markdown(one)
