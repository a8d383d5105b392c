"""Pretrained models: every registered model loads, checks its weights and scores what its card
says; a tampered file is refused; the cards are complete."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

import neurocnnf
from neurocnnf import pretrained
from neurocnnf.pretrained.cards import ACCURACY_IMAGES, first_test_accuracy
from neurocnnf.train import CheckpointError

NAMES = pretrained.list()


def test_models_are_registered_and_small_enough_to_ship():
    assert {"fmnist-small-cnn", "fmnist-small-cnnf1", "fmnist-small-cnnf5"} <= set(NAMES)
    # the weights ship inside the wheel, and PyPI refuses files over 100 MB by default: keep
    # well under it (the zoo is about 44 MiB with the 90-epoch CIFAR-10 pair)
    total = sum(p.stat().st_size for p in pretrained.MODELS.glob("*.safetensors"))
    assert total < 60 * 2**20


@pytest.mark.parametrize("name", NAMES)
def test_every_card_has_every_field_and_matches_its_checkpoint(name):
    card = pretrained.card(name)
    assert set(pretrained.CARD_FIELDS) <= set(card)
    assert card["name"] == name and len(card["weights_sha256"]) == 64
    assert card["data"]["train_sha256"] and card["wall_time_s"] > 0 and card["commit"]
    assert card["schedule"]["epochs"] >= 1 and card["config"]["seed"] == card["seed"]
    model = pretrained.load(name)
    assert model.iterations == card["iterations"] and model.config["arch"] == card["arch"]
    assert sum(p.numel() for p in model.parameters()) == card["parameters"]


@pytest.mark.data
@pytest.mark.parametrize("name", NAMES)
def test_every_model_scores_its_recorded_accuracy_on_the_first_1000_test_images(name):
    recorded = pretrained.card(name)["accuracy"][f"test_first_{ACCURACY_IMAGES}"]
    measured = first_test_accuracy(pretrained.load(name), pretrained.card(name)["data"]["dataset"])
    for scoring, value in recorded.items():
        assert abs(measured[scoring] - value) <= 0.005, (scoring, measured, recorded)


def test_a_tampered_weight_file_fails_its_checksum(tmp_path, monkeypatch):
    name = NAMES[0]
    for suffix in (".json", ".safetensors"):
        shutil.copy(pretrained.MODELS / f"{name}{suffix}", tmp_path)
    monkeypatch.setattr(pretrained.registry, "MODELS", tmp_path)
    weights = tmp_path / f"{name}.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        pretrained.load(name)
    with pytest.raises(CheckpointError, match="no pretrained model 'nope'"):
        pretrained.load("nope")


def test_pretrained_names_work_wherever_a_checkpoint_path_does(tmp_path):
    name = NAMES[0]
    model = neurocnnf.load(f"pretrained:{name}")
    assert model.iterations == pretrained.card(name)["iterations"]
    run = [sys.executable, "-m", "neurocnnf.cli"]
    listed = subprocess.run([*run, "pretrained", "list"], capture_output=True, text=True)
    assert listed.returncode == 0 and all(n in listed.stdout for n in NAMES)
    info = subprocess.run([*run, "info", f"pretrained:{name}"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["iterations"] == model.iterations
    exported = subprocess.run([*run, "pretrained", "export", name, str(tmp_path / "run")],
                              capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr
    assert neurocnnf.load(tmp_path / "run").iterations == model.iterations
    missing = subprocess.run([*run, "pretrained", "info", "nope"], capture_output=True,
                             text=True)
    assert missing.returncode != 0 and "no pretrained model 'nope'" in missing.stderr
    bare = subprocess.run([*run, "info", name], capture_output=True, text=True, cwd=tmp_path)
    assert bare.returncode != 0 and f"pretrained:{name}" in bare.stderr  # the hint


def test_a_run_still_training_registers_its_best_checkpoint_and_says_so(tmp_path):
    from neurocnnf.pretrained.cards import register
    from neurocnnf.train import load_model, train
    from neurocnnf.train.config import config_from_dict
    from neurocnnf.train.loop import evaluate, make_batches, prepare_data

    config = config_from_dict({
        "name": "tiny", "seed": 1, "eval_batch_size": 256,
        "model": {"arch": "fmnist_small", "iterations": 1},
        "data": {"train_limit": 256, "test_limit": 100},
        "optim": {"optimizer": "adam", "lr": 0.003, "batch_size": 64, "epochs": 3}})
    run = tmp_path / "run"
    train(config, run, progress=False, stop_after=1)
    assert not (run / "results.json").exists()
    card = json.loads(register(run, "tiny-interim", "a test", "here", "abc",
                               models=tmp_path).read_text())
    assert card["schedule"]["epochs_done"] == 1 and card["schedule"]["finished"] is False
    model = load_model(run / "best.safetensors")
    assert card["accuracy"]["test_full"] == evaluate(
        model, make_batches(prepare_data(config)[2], config, torch.device("cpu")))
