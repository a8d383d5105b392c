"""Training: losses, configs, checkpoints (atomic, safe, clear errors), resume, DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import neurocnnf
from neurocnnf.attacks import logits_fn, pgd
from neurocnnf.models import build_model, fmnist_small
from neurocnnf.train import (
    CheckpointError,
    ConfigError,
    available_presets,
    config_from_dict,
    load_checkpoint,
    load_config,
    load_model,
    save_model,
    train,
)
from neurocnnf.train import checkpoint as ckpt
from neurocnnf.train.config import LossConfig
from neurocnnf.train.loop import lr_factor
from neurocnnf.train.losses import adversarial_loss, reconstruction_loss, standard_loss


def tiny_config(**overrides):
    values = {
        "name": "tiny", "seed": 1, "device": "cpu", "eval_batch_size": 256,
        "model": {"arch": "fmnist_small", "iterations": 1},
        "data": {"train_limit": 384, "test_limit": 200},
        "optim": {"optimizer": "adam", "lr": 0.003, "weight_decay": 0.0, "batch_size": 64,
                  "epochs": 2, "schedule": "cosine", "grad_clip": 1.0},
    }
    for key, value in overrides.items():
        values.setdefault(key, {}).update(value) if isinstance(value, dict) else values.update(
            {key: value})
    return config_from_dict(values)


def test_every_preset_loads_and_twins_have_zero_iterations():
    names = available_presets()
    assert {"quickstart", "fmnist-small", "fmnist-adv", "cifar-wrn-adv"} <= set(names)
    for name in names:
        config = load_config(name)
        assert config.model.iterations == 0 if name.endswith("-cnn") else config.model.iterations
    adv = load_config("fmnist-adv")
    assert adv.adversarial.enabled and adv.adversarial.eps == 0.1 and adv.loss.clean_weight == 0.1
    assert load_config("cifar-wrn-adv").model.iterations == 2


@pytest.mark.parametrize("preset, overrides, match", [
    ("no-such-preset", [], "unknown preset"),
    ("quickstart", ["optim.lr=-0.1"], "optim.lr must be > 0"),
    ("fmnist-adv", ["adversarial.eps=1.5"], r"eps must be in \[0, 1\]"),
    ("quickstart-pc", ["model.eta=0.5"], "must be null for fmnist_pc"),
    ("quickstart", ["optim.learning_rate=0.1"], "unknown setting"),
    ("quickstart", ["model.arch=vgg"], "model.arch"),
    ("quickstart", ["oops"], "section.key=value"),
])
def test_bad_configs_give_clear_errors(preset, overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(preset, overrides)


def test_losses_on_a_trace():
    torch.manual_seed(0)
    model = fmnist_small(iterations=2)
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    trace = model(x, layers=model.reconstruction_taps)
    config = LossConfig(recon_weight=0.1, inter_weight=0.1)
    terms = standard_loss(trace, y, model.reconstruction_taps, config)
    ce = sum(torch.nn.functional.cross_entropy(z, y) for z in trace.logits) / 3
    rec = sum(0.1 * ((g - trace.h) ** 2).mean()
              + 0.1 * ((trace.feedback["conv2"][t] - trace.forward["conv2"][0]) ** 2).mean()
              for t, g in enumerate(trace.reconstruction)) / (2 * 2)
    torch.testing.assert_close(terms.total, ce + rec)
    # the plain CNN has no reconstruction term
    assert float(reconstruction_loss(model(x, iterations=0), (), config)) == 0.0
    # all rows (no slicing, the fast path) equals the same rows sliced: loss and gradients
    losses, grads = [], []
    for rows in (slice(None), slice(0, None)):
        model.zero_grad()
        loss = reconstruction_loss(model(x, layers=model.reconstruction_taps),
                                   model.reconstruction_taps, config, rows, rows)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert torch.equal(*losses) and all(map(torch.equal, *grads)) and grads[0]
    # adversarial: feedback of the adversarial half is pulled toward the clean first pass
    both = model(torch.cat([x, x]), layers=model.reconstruction_taps)
    adv = adversarial_loss(both, y, model.reconstruction_taps, LossConfig(clean_weight=1.0))
    torch.testing.assert_close(adv.total, standard_loss(trace, y, model.reconstruction_taps,
                                                        LossConfig()).total)


def test_pgd_stays_in_the_ball_and_the_box():
    torch.manual_seed(0)
    model = fmnist_small()
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    for target in ("first", "e2e"):
        adv = pgd(logits_fn(model, target, "avg"), x, y, eps=0.1, step_size=0.04, steps=3)
        assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1


def test_lr_schedules():
    assert lr_factor(0, 100, "poly") == 1.0 and lr_factor(100, 100, "poly") == 0.0
    assert lr_factor(50, 100, "cosine") == pytest.approx(0.5, abs=1e-4)
    assert lr_factor(37, 100, "constant") == 1.0


@pytest.mark.data
def test_training_lowers_the_loss_and_writes_the_run_folder(tmp_path):
    results = train(tiny_config(optim={"epochs": 3}), tmp_path, progress=False)
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    assert results["test"]["acc_last"] > 0.3  # 10 classes: chance is 0.1
    for name in ("config.yaml", "best.safetensors", "last.safetensors", "resume.pt",
                 "results.json"):
        assert (tmp_path / name).exists()
    meta = neurocnnf.train.read_metadata(tmp_path / "best.safetensors")
    assert meta["model"]["arch"] == "fmnist_small" and len(meta["data_sha256"]) == 64
    assert meta["epoch"] == results["best_epoch"] and "test" in meta
    # resuming a finished run trains nothing more and gives the same results
    again = train(tiny_config(optim={"epochs": 3}), tmp_path, resume=True, progress=False)
    assert again["test"] == results["test"] and again["best_epoch"] == results["best_epoch"]


@pytest.mark.data
def test_bf16_training_runs_on_the_cpu_and_keeps_float32_weights(tmp_path):
    """bf16: true autocasts the training passes on a CPU too (it was silently ignored there):
    the loss falls, the saved weights stay float32, and a bfloat16 pass is close to float32."""
    results = train(tiny_config(bf16=True, optim={"epochs": 2}), tmp_path, progress=False)
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert results["test"]["acc_last"] > 0.3
    model = neurocnnf.train.load_model(tmp_path)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        exact = model(x).last
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rounded = model(x).last.float()
    assert not torch.equal(exact, rounded)  # autocast did act
    assert (rounded - exact).abs().max() < 0.05 * exact.abs().max()


@pytest.mark.data
def test_a_diverging_run_stops_with_a_clear_error_and_saves_nothing(tmp_path):
    """The running loss is read every few steps (not every step: each read waits for a GPU);
    a loss that is no longer finite stops the run before the epoch's checkpoints."""
    # lr 1e20: the weights overflow float32 within the epoch's 6 steps. (At 1e8 the run still
    # diverges, to a loss of 6e17, but stays finite now that the RMS norm's backward is written
    # by hand: autograd's made NaN of a channel whose x^2 overflowed, the formula gives 0.)
    config = tiny_config(optim={"lr": 1e20, "grad_clip": None, "epochs": 1})
    with pytest.raises(FloatingPointError, match="lower optim.lr or enable optim.grad_clip"):
        train(config, tmp_path, progress=False)
    assert not (tmp_path / "best.safetensors").exists()
    assert not (tmp_path / "last.safetensors").exists()


@pytest.mark.data
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    config = tiny_config(adversarial={"enabled": True, "eps": 0.1, "step_size": 0.05,
                                      "steps": 2})
    train(config, tmp_path / "straight", progress=False)
    train(config, tmp_path / "split", progress=False, stop_after=1)
    assert not (tmp_path / "split" / "results.json").exists()
    train(config, tmp_path / "split", resume=True, progress=False)
    a = load_model(tmp_path / "straight" / "last.safetensors").state_dict()
    b = load_model(tmp_path / "split" / "last.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    with pytest.raises(ConfigError, match="different config"):
        train(tiny_config(optim={"lr": 0.01}), tmp_path / "split", resume=True, progress=False)


def test_a_changed_config_restarts_when_asked(tmp_path):
    train(tiny_config(optim={"epochs": 1}), tmp_path, progress=False, stop_after=1)
    changed = tiny_config(optim={"epochs": 1, "lr": 0.01})
    train(changed, tmp_path, resume=True, restart_if_changed=True, progress=False)
    assert (tmp_path / "resume.stale.pt").exists()
    fresh = train(changed, tmp_path / "fresh", progress=False)
    assert json.loads((tmp_path / "results.json").read_text())["test"] == fresh["test"]


def test_load_round_trip_gives_the_same_logits(tmp_path):
    torch.manual_seed(0)
    model = build_model("fmnist_adv", iterations=1)
    save_model(model, tmp_path / "m.safetensors", epoch=3)
    loaded = neurocnnf.load(tmp_path / "m.safetensors")
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).avg, model(x).avg, rtol=0, atol=0)
    checkpoint = load_checkpoint(tmp_path / "m.safetensors")
    assert loaded.iterations == 1 and checkpoint.metadata["epoch"] == 3
    assert not hasattr(loaded, "checkpoint_metadata")  # metadata is returned, not attached


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    model = fmnist_small()
    save_model(model, path, epoch=1)
    before = path.read_bytes()

    def killed(tensors, filename, metadata):
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_file", killed)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, path, epoch=2)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_bad_checkpoints_give_clear_errors(tmp_path):
    model = fmnist_small()
    good = tmp_path / "good.safetensors"
    save_model(model, good)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(1000))
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    pickled = tmp_path / "model.pt"
    torch.save(model.state_dict(), pickled)
    for path, match in [(truncated, "not a readable|cannot be read"),
                        (garbage, "not a readable"), (foreign, "not a neurocnnf checkpoint"),
                        (pickled, "not a readable"), (tmp_path / "none.safetensors",
                                                      "does not exist")]:
        with pytest.raises(CheckpointError, match=match):
            load_model(path)
    # weights of another architecture under this one's metadata
    other = build_model("fmnist_adv")
    with pytest.raises(CheckpointError, match="does not match fmnist_small"):
        ckpt.load_weights(model, other.state_dict(), "other.safetensors")


@pytest.mark.data
@pytest.mark.slow
def test_torchrun_ddp_two_processes_on_cpu(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "neurocnnf.cli", "train", "quickstart", "--out", str(tmp_path), "--no-progress",
        "--set", "data.train_limit=256", "--set", "data.test_limit=100",
        "--set", "optim.epochs=1", "--set", "optim.batch_size=32", "--set", "device=cpu",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["test"]["acc_last"] > 0.1
