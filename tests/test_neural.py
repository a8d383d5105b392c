"""The model-to-brain analysis end to end on real brain data with two small shipped models
(neurocnnf.pipelines.neural, ``neurocnnf analyze neural``)."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from neurocnnf.cli import app

MODELS = {"CNN-F": "pretrained:fmnist-small-cnnf1", "CNN": "pretrained:fmnist-small-cnn"}


@pytest.fixture(scope="module")
def neural_run(tmp_path_factory):
    from neurocnnf.pipelines.neural import run_neural

    out = tmp_path_factory.mktemp("results") / "neural"  # a workflow run's layout
    run_neural(MODELS, ["judgements92", "algonauts92"], out, n_boot=8, iterations=2)
    return out


@pytest.mark.slow
@pytest.mark.data
def test_tables_cover_every_model_layer_iteration_and_region(neural_run):
    table = pd.read_csv(neural_run / "algonauts92" / "similarity.csv")
    assert set(table["region"]) == {"EVC", "IT"}
    cnnf = table[table["model"] == "CNN-F"]
    assert set(cnnf["iteration"]) == {0, 1, 2} and set(table[table["model"] == "CNN"][
        "iteration"]) == {0}
    assert {"forward", "feedback", "input"} <= set(cnnf["kind"])
    assert (cnnf[cnnf["kind"] == "feedback"]["iteration"] >= 1).all()
    assert (table["ci_low"] <= table["ci_high"]).all()
    assert (table["ceiling_low"] < table["ceiling_high"]).all()
    subjects = pd.read_csv(neural_run / "algonauts92" / "subjects.csv")
    assert subjects["subject"].nunique() == 15
    mean = subjects.groupby(["model", "layer", "kind", "iteration", "region"])[
        "similarity"].mean()
    merged = table.set_index(["model", "layer", "kind", "iteration", "region"])["similarity"]
    assert np.allclose(mean.loc[merged.index], merged)


@pytest.mark.slow
@pytest.mark.data
def test_commitment_is_chosen_on_the_92_set_and_reported_elsewhere(neural_run):
    commitment = json.loads((neural_run / "commitment.json").read_text())
    assert commitment["chosen_on"] == "algonauts92" and set(commitment["regions"]) == {"EVC",
                                                                                      "IT"}
    it = pd.read_csv(neural_run / "algonauts92" / "similarity.csv").query(
        "region == 'IT' and kind == 'forward'")
    for model, pick in commitment["regions"]["IT"].items():
        assert pick["similarity"] == pytest.approx(it[it["model"] == model]["similarity"].max())
    held = pd.read_csv(neural_run / "held_out.csv")
    assert set(held["dataset"]) == {"judgements92"} and set(held["model"]) == set(MODELS)
    tests = pd.read_csv(neural_run / "tests.csv")
    assert {"1 iterations", "2 models", "3 hierarchy", "4 feedback vs forward"} <= set(
        tests["question"])
    tested = tests["p"].notna()  # a region whose two best layers coincide has nothing to test
    assert tests.loc[tested, "p"].between(0, 1).all() and tests["significant"].dtype == bool
    assert (tests.loc[~tested, "a"] == tests.loc[~tested, "b"]).all()
    assert not tests.loc[~tested, "significant"].any()
    for name in ("similarity_vs_iteration", "layer_hierarchy", "model_comparison_IT", "rdms"):
        assert (neural_run / "algonauts92" / f"{name}.png").stat().st_size > 10_000
    assert (neural_run / "judgements92" / "rdms.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.data
def test_cka_across_iterations_of_the_models_with_feedback(neural_run):
    """CKA between iterations, per layer, on the first set's images (what the former `analyze
    rsa` computed beside its RSA); the CNN twin runs no iteration and has none."""
    summary = json.loads((neural_run / "summary.json").read_text())
    assert summary["cka_on"] == "algonauts92" == summary["chosen_on"]
    cka = pd.read_csv(neural_run / "cka.csv")
    assert set(cka["model"]) == {"CNN-F"} and {"conv1", "conv2", "h_hat"} == set(cka["layer"])
    assert len(cka) == 3 * 3 * 3  # 3 layers x (t=0..2)^2
    diagonal = cka["iteration_a"] == cka["iteration_b"]
    assert np.allclose(cka.loc[diagonal, "cka"], 1)
    off = cka[~diagonal]
    assert off["cka"].between(-0.2, 1.0 + 1e-9).all() and (off["cka"] < 1 - 1e-6).any()
    assert (neural_run / "cka_CNN-F.png").stat().st_size > 10_000
    assert not (neural_run / "cka_CNN.png").exists()


@pytest.mark.slow
@pytest.mark.data
def test_the_report_shows_commitment_held_out_scores_tests_and_figures(neural_run):
    from neurocnnf.pipelines.layout import ResultsLayout
    from neurocnnf.pipelines.report import neural_blocks

    blocks = neural_blocks(ResultsLayout(neural_run.parent))
    kinds = [b.kind for b in blocks]
    assert kinds[0] == "h2" and kinds.count("table") == 3 and kinds.count("figure") >= 4
    commitment, held, tests = (b.content for b in blocks if b.kind == "table")
    assert set(commitment["region"]) == {"EVC", "IT"} and set(held["dataset"]) == {
        "judgements92"}
    assert len(tests) == len(pd.read_csv(neural_run / "tests.csv"))


@pytest.mark.slow
@pytest.mark.data
def test_the_document_and_headline_are_rendered_from_the_files(neural_run, tmp_path):
    import argparse
    import shutil

    from helpers import analysis_script

    docs = tmp_path / "neural"
    shutil.copytree(neural_run, docs)
    (docs / "models.json").write_text(json.dumps({m: {"source": s, "sha256": "0" * 64}
                                                  for m, s in MODELS.items()}))
    readme = tmp_path / "README.md"
    script = analysis_script("neural")
    readme.write_text(f"intro\n{script.HEADLINE[0]}\nold\n{script.HEADLINE[1]}\nrest\n")
    script.report(argparse.Namespace(docs=str(docs), out=str(tmp_path / "neural.md"),
                                     readme=str(readme)))
    text = (tmp_path / "neural.md").read_text()
    for heading in ("## (1)", "## (2)", "## (3)", "## (4)", "## Commitment"):
        assert heading in text
    tests = pd.read_csv(neural_run / "tests.csv")
    assert text.count("after FDR") == int(tests["p"].notna().sum())
    headline = readme.read_text()
    assert "old" not in headline and headline.startswith("intro") and headline.endswith("rest\n")
    assert "CNN-F as the model of interest" in headline


def test_the_committed_page_and_headline_equal_their_rendering(tmp_path):
    """docs/neural.md and the README's neural headline are what `analyses/neural.py report`
    writes from docs/neural/ now: no number in them is typed or stale."""
    import argparse
    import shutil
    from pathlib import Path

    from helpers import analysis_script

    root = Path(__file__).resolve().parents[1]
    readme = tmp_path / "README.md"
    shutil.copy(root / "README.md", readme)
    analysis_script("neural").report(argparse.Namespace(
        docs=str(root / "docs" / "neural"), out=str(tmp_path / "neural.md"), readme=str(readme)))
    assert (tmp_path / "neural.md").read_text() == (root / "docs" / "neural.md").read_text()
    assert readme.read_text() == (root / "README.md").read_text()


def test_the_human_headline_reads_the_model_at_its_trained_iterations():
    """CIFAR-10H in the headline: a CNN-F trained with T = 1 and tested to t = 3 is reported
    at t = 1 (where it was trained), with how far t = 3 moved from its first pass beside it; a
    checkpoint without a card falls back to the last iteration tested."""
    from helpers import analysis_script

    script = analysis_script("neural")
    rows = [dict(a=f"CNN-F t={t}", b=b, quantity="cross_entropy", value=0.1 * t + i,
                 ci_low=0.1 * t + i - 0.01, ci_high=0.1 * t + i + 0.01, p=0.0)
            for t in range(1, 4) for i, b in enumerate(["CNN-F t=0", "CNN t=0"])]
    rows.append(dict(a="CNN-F t=1", b="CNN t=0", quantity="agreement_disputed", value=9.0,
                     ci_low=8.0, ci_high=10.0, p=0.0))
    table = pd.DataFrame(rows)
    assert script.trained_iterations({"source": "pretrained:fmnist-small-cnnf1"}) == 1
    text = script._human_headline(table, "CNN-F", {"source": "pretrained:fmnist-small-cnnf1"})
    assert "trained T = 1: CNN-F t=1 minus CNN-F t=0 0.100 nats [0.090, 0.110]" in text
    assert "CNN-F t=1 minus CNN t=0 1.100 nats" in text and "9.000" not in text
    assert text.endswith("to t = 3: CNN-F t=3 minus CNN-F t=0 0.300 nats [0.290, 0.310].")
    assert "CNN-F t=2" not in text and "CNN-F t=3 minus CNN t=0" not in text
    fallback = script._human_headline(table, "CNN-F", {"source": "runs/mine/best.safetensors"})
    assert "at CNN-F's t = 3: CNN-F t=3 minus CNN-F t=0" in fallback
    assert "Run on" not in fallback


def test_cli_refuses_unknown_data_sets_and_bad_models(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", "neural", "--model", "CNN=pretrained:fmnist-small-cnn",
                                 "--dataset", "algonauts", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "unknown brain data set(s) ['algonauts']" in result.output
    result = runner.invoke(app, ["analyze", "neural", "--model", "CNN", "--dataset",
                                 "algonauts92", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "must look like NAME=CHECKPOINT" in result.output
    result = runner.invoke(app, ["analyze", "neural", "--model", "CNN=pretrained:fmnist-small-cnn",
                                 "--dataset", "algonauts78", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "chosen on algonauts92" in result.output


@pytest.mark.data
def test_one_rdm_regions_resample_stimuli_only_and_have_no_ceiling():
    from neurocnnf.analysis import neural
    from neurocnnf.data import load_brain_rdms

    macaque = load_brain_rdms("kriegeskorte92", "macaque_IT")
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((2, 92, 92))
    models = np.stack([macaque.rdms[0] + 0.01 * (n + n.T) for n in noise])
    for m in models:
        np.fill_diagonal(m, 0)
    index = pd.DataFrame({"model": ["A", "B"], "layer": "conv1", "kind": "forward",
                          "iteration": [0, 1], "depth": 1})
    result = neural.evaluate_region(index, models, macaque, n_boot=30)
    assert result.boot is None and result.table["ceiling_low"].isna().all()
    assert (result.table["similarity"] > 0.9).all()
    assert (result.table["ci_low"] < result.table["similarity"]).all()
    test = neural._test(result, "1 iterations", 1, 0, "last vs iteration 0")
    assert np.isnan(test["p"])  # one RDM: no variance over subjects to test with
