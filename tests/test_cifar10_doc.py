"""docs/cifar10.md is rendered from the zoo's committed records, never edited by hand."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_page_equals_its_rendering():
    sys.path.insert(0, str(ROOT / "analyses"))
    try:
        from render_cifar10 import render
    finally:
        sys.path.remove(str(ROOT / "analyses"))
    records = ROOT / "docs" / "reproduction" / "cifar10"
    assert render(records) == (ROOT / "docs" / "cifar10.md").read_text()


def test_every_run_record_resumes(tmp_path):
    from neurocnnf.train.checkpoint import load_resume_state

    runs = sorted((ROOT / "docs" / "reproduction" / "cifar10" / "runs").glob("*-s*"))
    assert {r.name for r in runs} >= {"cnn-s0", "cnnf1-s0", "pc-s0"}
    for run in runs:
        state = load_resume_state(run / "resume.pt")
        lines = (run / "metrics.jsonl").read_text().splitlines()
        assert state["epoch"] == len(lines) >= 1


def test_a_finished_longer_schedule_is_judged_against_the_bar(tmp_path):
    """A finished 60-epoch twin is reported against the 85 % bar with its hours at the quiet
    benchmark rate, and the CNN-F of the same schedule against the 1.5 pp gap."""
    import json
    import shutil

    sys.path.insert(0, str(ROOT / "analyses"))
    try:
        from render_cifar10 import _longer
    finally:
        sys.path.remove(str(ROOT / "analyses"))
    records = ROOT / "docs" / "reproduction" / "cifar10"
    shutil.copy(records / "bench-steps.json", tmp_path)
    config = {"optim": {"epochs": 60}}
    metrics = [{"epoch": 60, "val_acc_last": 0.86}]

    def run(name, accuracy):
        return (name, config, metrics, {"test": {"acc_last": accuracy}})

    rate = json.loads((records / "bench-steps.json").read_text())["models"]["twin (vgg6, T=0)"]
    rates = {"twin (vgg6, T=0)": rate["images_per_s"]}
    text = _longer([run("cnn-e60-s0", 0.862), run("cnnf1-e60-s0", 0.845)], rates, 45_000)
    assert "reached 86.20 % test accuracy" in text and "the bar's accuracy is met" in text
    assert f"{60 * 45_000 / rate['images_per_s'] / 3600:.1f} h" in text
    assert "1.7 pp below its twin, outside the 1.5 pp allowed" in text
    short = _longer([run("cnn-e60-s0", 0.84)], rates, 45_000)
    assert "1.00 pp short of the bar" in short
    alone = _longer([run("cnn-e60-s0", 0.86)], rates, 45_000)
    assert "has not started yet" in alone


def test_a_longer_schedule_that_meets_the_whole_bar_leads_the_verdict():
    """The bar met on a longer schedule (twin >= 85 %, its CNN-F within 1.5 pp) opens the
    verdict; a CNN-F too far below, or not finished, does not."""
    sys.path.insert(0, str(ROOT / "analyses"))
    try:
        from render_cifar10 import _met
    finally:
        sys.path.remove(str(ROOT / "analyses"))
    config = {"optim": {"epochs": 90}}

    def run(name, accuracy):
        return (name, config, [], None if accuracy is None else {"test": {"acc_last": accuracy}})

    text = _met([run("cnn-e90-s0", 0.8556), run("cnnf1-e90-s0", 0.846)])
    assert text.startswith("**The bar is met on the 90-epoch schedule:**")
    assert "(cnn-e90-s0) reached 85.56 % and CNN-F (cnnf1-e90-s0) 84.60 %, 1.0 pp below" in text
    assert _met([run("cnn-e90-s0", 0.8556), run("cnnf1-e90-s0", 0.84)]) == ""
    assert _met([run("cnn-e90-s0", 0.8556), run("cnnf1-e90-s0", None)]) == ""
    assert _met([run("cnn-e90-s0", 0.849), run("cnnf1-e90-s0", 0.849)]) == ""


def test_each_schedule_gets_its_own_robustness_and_corruption_tables(tmp_path):
    """The 90-epoch runs' evaluation (files tagged ``e90-s0``) renders under its own heading,
    beside the presets' (``s0``), and its image count is read from the per-image bits."""
    import shutil

    sys.path.insert(0, str(ROOT / "analyses"))
    try:
        from render_cifar10 import _by_schedule, _corruptions, _robustness
    finally:
        sys.path.remove(str(ROOT / "analyses"))
    records = ROOT / "docs" / "reproduction" / "cifar10"
    out = tmp_path / "docs" / "reproduction" / "cifar10"
    out.mkdir(parents=True)
    for tag in ("s0", "e90-s0"):
        shutil.copy(records / "paired-s0.csv", out / f"paired-{tag}.csv")
        shutil.copy(records / "cnn-s0.csv", out / f"cnn-{tag}.csv")
        shutil.copytree(records / "corruptions-s0", out / f"corruptions-{tag}")
    groups = _by_schedule([out / "paired-s0.csv", out / "paired-e90-s0.csv",
                           out / "corruptions-e90-s0"], preset_epochs=15)
    assert list(groups) == [90, 15]
    assert groups[90] == [out / "paired-e90-s0.csv", out / "corruptions-e90-s0"]

    robustness = _robustness(out, preset_epochs=15)
    headings = [line for line in robustness if line.startswith("### ")]
    assert headings == ["### 90-epoch runs (e90-s0; the first 1,000 test images)",
                        "### 15-epoch runs (s0; the first 1,000 test images)"]
    corruptions = "\n".join(_corruptions(out, preset_epochs=15))
    assert corruptions.index("### 90-epoch runs (e90-s0)") < corruptions.index("### 15-epoch")
    assert "(reproduction/cifar10/corruptions-e90-s0/corruptions.png)" in corruptions
