"""The registry of the models shipped with the package: names -> their cards and checked
weights files (``models/<name>.safetensors`` beside ``models/<name>.json``).

It needs no training code, so that checkpoint loading (``neurocnnf.train``) resolves
``pretrained:NAME`` through it; :mod:`neurocnnf.pretrained` adds ``load``.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from neurocnnf.errors import CheckpointError

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
