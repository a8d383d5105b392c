"""Trained models shipped with the package: a small registry of safetensors files and cards.

Each model is ``models/<name>.safetensors`` (a neurocnnf checkpoint: weights + metadata) beside
``models/<name>.json``, its model card: data and its sha256, config, schedule, seed, hardware,
wall time, clean and robust accuracy, the commit it was trained at, and the weights' sha256,
checked on every load.

>>> import neurocnnf.pretrained as pretrained
>>> pretrained.list()                       # names
>>> model = pretrained.load("fmnist-small-cnnf5")
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from neurocnnf.train.checkpoint import CheckpointError, load_model

MODELS = Path(__file__).parent / "models"
PREFIX = "pretrained:"
CARD_FIELDS = ("name", "description", "arch", "iterations", "eta", "data", "config", "schedule",
               "seed", "hardware", "wall_time_s", "accuracy", "robustness", "commit",
               "weights_sha256", "parameters")


def list() -> builtins.list[str]:  # noqa: A001 (the registry's verb, as torch.hub.list)
    """Names of the registered models, sorted."""
    return sorted(p.stem for p in MODELS.glob("*.json"))


def card(name: str) -> dict[str, Any]:
    """The model card of ``name`` (a dict with the fields of CARD_FIELDS)."""
    path = MODELS / f"{name}.json"
    if not path.exists():
        raise CheckpointError(f"no pretrained model {name!r}; registered: {', '.join(list())}")
    return json.loads(path.read_text())


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path(name: str) -> Path:
    """The weights file of ``name``, after checking its sha256 against the card."""
    expected = card(name)["weights_sha256"]
    weights = MODELS / f"{name}.safetensors"
    if not weights.exists():
        raise CheckpointError(f"pretrained {name!r}: weights file {weights} is missing")
    actual = sha256(weights)
    if actual != expected:
        raise CheckpointError(f"pretrained {name!r}: {weights.name} has sha256 {actual[:16]}..., "
                              f"its card records {expected[:16]}...: the file is corrupt or "
                              "was modified (reinstall the package)")
    return weights


def load(name: str, map_location: str = "cpu"):
    """The model ``name`` rebuilt from its checked weights (eval mode)."""
    return load_model(path(name), map_location=map_location)


def resolve(spec: str) -> Path | None:
    """``'pretrained:NAME'`` -> the checked weights file; anything else -> None."""
    return path(spec[len(PREFIX):]) if str(spec).startswith(PREFIX) else None


def model_name(spec: str | os.PathLike) -> str:
    """The name a model argument stands for: NAME for ``pretrained:NAME``, the run folder's
    name for a run folder or its best/last checkpoint, else the file's stem."""
    text = str(spec)
    if text.startswith(PREFIX):
        return text[len(PREFIX):]
    path = Path(text)
    if path.is_dir() or path.stem in ("best", "last"):
        return (path if path.is_dir() else path.parent).resolve().name
    return path.stem
