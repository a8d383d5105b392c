"""Checkpoints: one safetensors file (weights + JSON metadata), written atomically.

``model.safetensors`` holds every tensor of the model and, in its header, the metadata needed
to rebuild it (architecture config, iterations, eta, training config, epoch, metrics, package
version, data checksum). Loading never unpickles anything. The resume state (optimizer and
schedule) is a separate file loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from neurocnnf.models import CNNF, build_from_config

FORMAT = "neurocnnf-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated or does not match the model."""


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: no half-written file after a kill."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_model(model: CNNF, path: Path, **metadata: Any) -> None:
    """Write weights and metadata (JSON-serializable values) to ``path`` atomically."""
    from neurocnnf import __version__

    header = {
        "format": FORMAT,
        "package_version": __version__,
        "model": model.config,
        "iterations": model.iterations,
        "eta": model.eta,
        **metadata,
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"neurocnnf": json.dumps(
        header)}))


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without loading the weights."""
    from safetensors import safe_open

    path = resolve_checkpoint(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get("neurocnnf")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({error})") from None
    if raw is None:
        raise CheckpointError(f"{path}: a safetensors file, but not a neurocnnf checkpoint")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unsupported checkpoint format {meta.get('format')!r}")
    return meta


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> CNNF:
    """Rebuild a model from a checkpoint file, or a run folder (its best checkpoint)."""
    path = resolve_checkpoint(path)
    meta = read_metadata(path)
    try:
        model = build_from_config(meta["model"], meta["iterations"], meta["eta"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot rebuild the model ({error})") from None
    try:
        state = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: weights cannot be read ({error})") from None
    load_weights(model, state, str(path))
    model.checkpoint_metadata = meta
    return model.to(map_location).eval()


def load_weights(model: CNNF, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model``; a clear error for missing, extra or mis-shaped tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {names[:5]}{' ...' if len(names) > 5 else ''}"
            for label, names in [("missing", missing), ("unexpected", unexpected),
                                 ("wrong shape", wrong)] if names
        )
        raise CheckpointError(f"{source} does not match {model.config.get('arch')}: {detail}")
    model.load_state_dict(state)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint file a path names: a file, a run folder (its best checkpoint) or
    ``pretrained:NAME`` (a model of :mod:`neurocnnf.pretrained`, its sha256 checked)."""
    if str(path).startswith("pretrained:"):
        from neurocnnf.pretrained import resolve

        return resolve(str(path))
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors", "model.safetensors"):
            if (path / name).exists():
                return path / name
        raise CheckpointError(f"{path}: folder has no best/last/model.safetensors checkpoint")
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def save_resume_state(path: Path, state: dict[str, Any]) -> None:
    """Optimizer/scheduler/progress for --resume (tensors and plain values only)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_resume_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"{path}: resume state cannot be loaded safely ({error})") from None
