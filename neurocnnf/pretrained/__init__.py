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

from neurocnnf.pretrained.registry import (
    CARD_FIELDS,
    MODELS,
    PREFIX,
    card,
    list,
    model_name,
    path,
    resolve,
    sha256,
)
from neurocnnf.train.checkpoint import load_model

__all__ = ["CARD_FIELDS", "MODELS", "PREFIX", "card", "list", "load", "model_name", "path",
           "resolve", "sha256"]


def load(name: str, map_location: str = "cpu"):
    """The model ``name`` rebuilt from its checked weights (eval mode)."""
    return load_model(path(name), map_location=map_location)
