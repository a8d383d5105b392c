"""Register a training run as a pretrained model: copy its best checkpoint into the package and
write its model card (what :mod:`neurocnnf.pretrained` reads). A run still training registers
its best checkpoint so far; the card says how many of its planned epochs were done."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from neurocnnf.io import atomic_write
from neurocnnf.models.inputs import input_normalisation
from neurocnnf.pretrained.registry import MODELS, sha256
from neurocnnf.train.checkpoint import load_model, read_metadata
from neurocnnf.train.config import config_from_dict
from neurocnnf.train.loop import prepare_data

ACCURACY_IMAGES = 1000  # the card's accuracy is measured on the first 1,000 test images


def first_test_accuracy(model, dataset: str, n: int = ACCURACY_IMAGES) -> dict[str, float]:
    """Accuracy (first/last/avg logits) of ``model`` on the first ``n`` test images."""
    import torch

    from neurocnnf.data import load_dataset

    test = load_dataset(dataset, "test")
    images, labels = test.images[:n].float() / 255, test.labels[:n]
    with torch.no_grad():
        trace = model(images)
    return {s: float((trace.scored(s).argmax(1) == labels).float().mean())
            for s in ("first", "last", "avg")}


def training_seconds(run: Path, n_train: int) -> float:
    """Training time summed over epochs: training images / measured images per second."""
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return sum(n_train / epoch["images_per_s"] for epoch in epochs)


def full_test_accuracy(run: Path, model, test_set, config) -> dict[str, float]:
    """The test set's accuracy (first/last/avg): results.json's of a finished run, else
    measured now on ``model`` (a run still training)."""
    if (run / "results.json").exists():
        return json.loads((run / "results.json").read_text())["test"]
    import torch

    from neurocnnf.train.loop import evaluate, make_batches

    with torch.no_grad():
        return evaluate(model, make_batches(test_set, config, torch.device("cpu")))


def make_card(run: Path, name: str, description: str, hardware: str, commit: str,
              robustness: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model card of run folder ``run`` (its best checkpoint) under ``name``."""
    meta = read_metadata(run / "best.safetensors")
    config = meta["config"]
    model = load_model(run / "best.safetensors")
    optim = config["optim"]
    train_config = config_from_dict(config)
    train_set, _, test_set = prepare_data(train_config)  # once: decoding is the slow part
    epochs_done = len((run / "metrics.jsonl").read_text().splitlines())
    return {
        "name": name,
        "description": description,
        "arch": meta["model"]["arch"],
        "iterations": meta["iterations"],
        "eta": meta["eta"],
        "data": {"dataset": config["data"]["dataset"], "train_sha256": meta.get("data_sha256"),
                 "val_fraction": config["data"]["val_fraction"]},
        "config": config,
        "schedule": {k: optim[k] for k in ("optimizer", "lr", "schedule", "epochs",
                                            "batch_size", "weight_decay", "grad_clip")}
        | {"best_epoch": meta["epoch"], "selected_on": "validation accuracy (last)",
           "epochs_done": epochs_done, "finished": epochs_done >= optim["epochs"]},
        "seed": config["seed"],
        "hardware": hardware,
        "wall_time_s": round(training_seconds(run, len(train_set)), 1),
        "accuracy": {"test_full": full_test_accuracy(run, model, test_set, train_config),
                     f"test_first_{ACCURACY_IMAGES}": first_test_accuracy(
                         model, config["data"]["dataset"])},
        "robustness": robustness or {},
        "input": {"shape": list(model.input_shape), **input_normalisation(model),
                  "scale": "pixels in [0, 1], normalised inside the model"},
        "commit": commit,
        "weights_sha256": "",
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def register(run: Path, name: str, description: str, hardware: str, commit: str,
             robustness: dict[str, Any] | None = None, models: Path = MODELS) -> Path:
    """Copy ``run``'s best checkpoint to ``models/<name>.safetensors`` and write its card."""
    card = make_card(Path(run), name, description, hardware, commit, robustness)
    weights = models / f"{name}.safetensors"
    atomic_write(weights, lambda tmp: shutil.copyfile(Path(run) / "best.safetensors", tmp))
    card["weights_sha256"] = sha256(weights)
    path = models / f"{name}.json"
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(card, indent=2) + "\n"))
    return path
