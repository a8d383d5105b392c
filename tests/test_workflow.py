"""The Snakemake workflow, run for real on the tiny test config (workflows/config/test.yaml)."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, SNAKEFILE, TEST_CONFIG, snakemake

from neurocnnf.activations import open_activations

pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n"


def _job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count (empty when nothing is to be done)."""
    lines = dry_run_output.split("Job stats:")[-1].splitlines() if "Job stats:" in \
        dry_run_output else []
    counts = {}
    for line in lines[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    counts.pop("total", None)
    return counts


def _pipe_rows(markdown: str) -> list[list[str]]:
    """The cells of a Markdown pipe table's rows (the rule line left out)."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in markdown.splitlines() if line.startswith("|")]
    return [row for row in rows if not all(set(c) <= set("-: ") for c in row)]


def test_every_target_exists_and_is_valid(workflow_run):
    res = workflow_run / "results" / "test"
    manifest = json.loads((res / "data" / "manifest.json").read_text())
    assert manifest["fashion_mnist"]["test"]["n"] == 10000
    assert manifest["kriegeskorte92"]["n_images"] == 92
    for model in ("cnnf", "cnn", "pc"):
        result = json.loads((res / "models" / model / "seed0" / "results.json").read_text())
        assert 0.1 <= result["test"]["acc_last"] <= 1  # better than chance after 1 epoch
        assert (res / "models" / model / "seed0" / "best.safetensors").stat().st_size > 1000
    table = (res / "robustness" / "table.md").read_text()
    assert "CNN-F (last)" in table and "| CNN |" in table
    results = pd.read_csv(res / "robustness" / "results.csv")
    assert results["accuracy"].between(0, 1).all() and set(results["attack"]) >= {"pgd", "fgsm"}
    config = yaml.safe_load(TEST_CONFIG.read_text())
    stimuli = pd.read_csv(res / "stimuli" / "difficulty" / "stimuli.csv")
    assert len(stimuli) == 60 * len(config["difficulty"]["noise"]) and stimuli["rendered"].all()
    assert all((res / "stimuli" / "difficulty" / f).exists() for f in stimuli["filename"])
    ds = open_activations(res / "activations" / "cnnf" / "difficulty.nc")
    assert ds.sizes["iteration"] == config["iterations"] + 1 and ds.attrs["model_id"] == "cnnf"
    # the brain data meet the CIFAR-10 zoo (photographs in colour): RSA and CKA in one rule
    neural = res / "neural"
    labels = list(config["neural"]["models"])
    similarity = pd.read_csv(neural / "algonauts92" / "similarity.csv")
    assert set(similarity["model"]) == set(labels) and similarity["similarity"].between(
        -1, 1).all()
    cka = pd.read_csv(neural / "cka.csv")
    assert {"CNN-F", "PC"} <= set(cka["model"]) and cka["cka"].between(-1, 1 + 1e-9).all()
    assert (neural / "cka_CNN-F.png").exists() and (neural / "algonauts92" / "rdms.png").exists()
    assert not (res / "rsa").exists()
    assert "PC" in json.loads((res / "predictive_coding" / "summary.json").read_text())["results"]
    summary = json.loads((res / "difficulty" / "cnnf" / "difficulty_summary.json").read_text())
    assert {"settling_vs_level", "accuracy_gain_by_level"} <= set(summary)
    figures = [p for p in res.glob("**/*.png") if "stimuli" not in p.parts]
    assert len(figures) >= 15
    assert all(p.read_bytes()[:8] == PNG for p in figures)
    plugin = next((res / "brainscore" / "plugin").glob("*/model.py"))
    assert (plugin.parent / "__init__.py").exists() and (plugin.parent / "test.py").exists()
    report = (res / "report.md").read_text()
    for link in [line.split("](")[1][:-1] for line in report.splitlines() if "![" in line]:
        assert (res / link).exists(), link
    # the report's robustness table is results.csv's, the same numbers as table.md
    table_rows = {cells[0]: cells[1:] for cells in _pipe_rows(table)[1:]}
    report_table = _pipe_rows(report.split("## Robustness")[1].split("##")[0])
    assert report_table[0][0] == "model" and len(report_table) - 1 == len(table_rows) >= 2
    assert all(table_rows[cells[0]] == cells[1:] for cells in report_table[1:])
    # with a twin: CNN-F minus it on the same images, each row with its interval and p
    paired = pd.read_csv(res / "robustness" / "paired.csv")
    assert ((paired["low_pp"] <= paired["difference_pp"])
            & (paired["difference_pp"] <= paired["high_pp"])).all()
    paired_rows = _pipe_rows(report.split("## CNN-F minus its twin, image by image")[1]
                             .split("##")[0])
    assert len(paired_rows) - 1 == (paired["scoring"] == "last").sum() >= 3
    assert "minus its twin" in report.split("## Headline")[1].split("##")[0]
    page = (res / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 8 and "Headline" in page
    assert f"`{plugin.parent.name}`" in report  # the Brain-Score plugin is named


def test_rerunning_does_nothing_and_a_change_reruns_only_its_dependents(workflow_run, tmp_path):
    again = snakemake(workflow_run, "-n")
    assert again.returncode == 0 and _job_counts(again.stdout) == {}, again.stdout[-2000:]
    changed = yaml.safe_load(TEST_CONFIG.read_text())
    changed["predictive_coding"]["noise"] = [0.0, 0.2]
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(changed, sort_keys=False))
    plan = snakemake(workflow_run, "-n", config=path)
    assert _job_counts(plan.stdout) == {"predictive_coding": 1, "report": 1, "all": 1}
    changed = yaml.safe_load(TEST_CONFIG.read_text())
    changed["models"]["pc"] = {"preset": "quickstart-pc", "set": ["optim.epochs=1"]}
    path.write_text(yaml.safe_dump(changed, sort_keys=False))
    plan = snakemake(workflow_run, "-n", config=path)
    counts = _job_counts(plan.stdout)
    assert counts["train"] == 1 and "robustness" not in counts  # robustness reads cnnf/cnn only
    assert {"predictive_coding", "report"} <= set(counts)
    assert "neural" not in counts  # the photographs meet the CIFAR zoo


def test_a_killed_training_job_resumes(workflow_run):
    """Training killed after its last epoch but before results.json: the rerun continues
    from resume.pt (no epoch is trained again) and gives the same test result."""
    run = workflow_run / "results" / "test" / "models" / "cnn" / "seed0"
    before = json.loads((run / "results.json").read_text())
    (run / "results.json").unlink()
    target = "results/test/models/cnn/seed0/results.json"
    result = snakemake(workflow_run, "--cores", "2", target)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (workflow_run / "results" / "test" / "logs" / "train" / "cnn-seed0.log").read_text()
    assert "epoch 1:" not in log
    assert json.loads((run / "results.json").read_text())["test"] == before["test"]


def test_bad_configs_fail_with_clear_messages(tmp_path):
    """Two bad configs planned at once, each in its own working directory."""
    bad = yaml.safe_load(TEST_CONFIG.read_text())
    bad["neural"]["models"]["CNN"] = "resnet"
    expected = {"iterations: -1 is less than the minimum of 0": -1,
                "neural.models.CNN names model 'resnet'": 2}
    with ThreadPoolExecutor(2) as pool:
        runs = {}
        for i, (message, iterations) in enumerate(expected.items()):
            path = tmp_path / str(i) / "bad.yaml"
            path.parent.mkdir()
            path.write_text(yaml.safe_dump({**bad, "iterations": iterations}))
            runs[message] = pool.submit(snakemake, path.parent, "-n", config=path)
        for message, run in runs.items():
            result = run.result()
            assert result.returncode != 0 and message in result.stderr + result.stdout, message


def test_lint_is_clean_and_every_config_plans(tmp_path):
    """The lint and the dry runs, two at a time (each is one busy Python process), each in a
    working directory of its own."""
    configs = sorted((REPO / "workflows" / "config").glob("*.yaml"))
    paper = REPO / "workflows" / "config" / "paper-fmnist.yaml"
    calls = {"lint": (("--lint",), TEST_CONFIG),
             "slurm": (("-n", "--profile", str(SNAKEFILE.parent / "profiles" / "slurm")), paper),
             **{config.name: (("-n",), config) for config in configs}}
    for name in calls:
        (tmp_path / name).mkdir()
    with ThreadPoolExecutor(2) as pool:
        runs = {name: pool.submit(snakemake, tmp_path / name, *args, config=config)
                for name, (args, config) in calls.items()}
        done = {name: run.result() for name, run in runs.items()}
    lint = done.pop("lint")
    assert "Lints for" not in lint.stdout + lint.stderr, lint.stdout[-3000:]
    slurm = done.pop("slurm")
    assert slurm.returncode == 0 and "gpu=1" in slurm.stdout
    for name, plan in done.items():
        assert plan.returncode == 0, (name, plan.stderr[-2000:])
        assert _job_counts(plan.stdout)["report"] == 1


def test_a_workflow_killed_mid_training_resumes_at_the_next_epoch(tmp_path):
    """Ctrl-C (SIGINT to the process group) after the first epoch; the rerun trains only the
    remaining epochs."""
    config = yaml.safe_load(TEST_CONFIG.read_text())
    # epochs long enough (~seconds each) that the interrupt lands before the run could finish
    config["models"]["cnnf"]["set"] = ["optim.epochs=3", "data.train_limit=3000",
                                       "data.test_limit=200", "model.iterations=1"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    target = "results/test/models/cnnf/seed0/results.json"
    run = tmp_path / "results" / "test" / "models" / "cnnf" / "seed0"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--configfile", str(path),
               "--directory", str(tmp_path), "--cores", "2", target]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (run / "metrics.jsonl").exists() or not (run / "metrics.jsonl").read_text():
        assert process.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=120)
    assert not (run / "results.json").exists()
    done = len((run / "metrics.jsonl").read_text().splitlines())
    assert 1 <= done < 3
    result = snakemake(tmp_path, "--cores", "2", "--rerun-incomplete", target, config=path)
    assert result.returncode == 0, result.stderr[-3000:]
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text()
              .splitlines()]
    assert epochs == [1, 2, 3]
    log = (tmp_path / "results" / "test" / "logs" / "train" / "cnnf-seed0.log").read_text()
    assert "epoch 1:" not in log and "epoch 3:" in log  # the rerun's log: later epochs only
