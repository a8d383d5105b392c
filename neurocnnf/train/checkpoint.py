"""Checkpoints: one safetensors file (weights + JSON metadata), written atomically.

``model.safetensors`` holds every tensor of the model and, in its header, the metadata needed
to rebuild it (architecture config, iterations, eta, training config, epoch, metrics, package
version, data checksum, and ``tensors_sha256``: a checksum of the tensors, checked on load;
files written before it have none and load unchecked). Loading never unpickles anything.
The resume state (optimizer and schedule) is a separate file loaded with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from neurocnnf.errors import CheckpointError
from neurocnnf.io import atomic_write
from neurocnnf.models import FeedbackModel, architecture, build_from_config

FORMAT = "neurocnnf-checkpoint/1"


def save_model(model: FeedbackModel, path: Path, **metadata: Any) -> None:
    """Write weights and metadata (JSON-serializable values) to ``path`` atomically, with
    the checksum of the tensors (``tensors_sha256``)."""
    from neurocnnf.version import __version__

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {
        "format": FORMAT,
        "package_version": __version__,
        "model": model.config,
        "iterations": model.iterations,
        "eta": model.eta,
        **metadata,
        "tensors_sha256": tensors_sha256(tensors),
    }
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"neurocnnf": json.dumps(
        header)}))


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON ({error})") \
            from None
    found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
    if found != FORMAT:
        raise CheckpointError(f"{path}: unsupported checkpoint format {found!r}")
    return meta


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A model rebuilt from a checkpoint and the checkpoint's metadata (its JSON header)."""

    model: FeedbackModel
    metadata: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        """The training run's name (config ``name``), else the run folder's name."""
        return self.metadata.get("config", {}).get("name") or self.path.parent.name


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> LoadedCheckpoint:
    """Rebuild a model from a checkpoint file, or a run folder (its best checkpoint), in eval
    mode on ``map_location``, with the metadata it was saved with."""
    path = resolve_checkpoint(path)
    meta = read_metadata(path)
    with torch.device("meta"):  # shapes only: the metadata is checked before any allocation
        skeleton = _rebuild(meta, path)
    check_metadata(meta, skeleton, stored_shapes(path), path)
    model = _rebuild(meta, path)
    try:
        state = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: weights cannot be read ({error})") from None
    expected = meta.get("tensors_sha256")
    if expected is not None and tensors_sha256(state) != expected:
        raise CheckpointError(f"{path}: its tensors do not match the checksum in its metadata "
                              "(tensors_sha256): the file is damaged or was edited")
    load_weights(model, state, str(path))
    return LoadedCheckpoint(model.to(map_location).eval(), meta, path)


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu"
               ) -> FeedbackModel:
    """The model of :func:`load_checkpoint` alone."""
    return load_checkpoint(path, map_location).model


def _rebuild(meta: dict[str, Any], path: Path) -> FeedbackModel:
    try:
        return build_from_config(meta["model"], meta["iterations"], meta["eta"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot rebuild the model ({error})") from None


def stored_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file, read from its header only."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: weights cannot be read ({error})") from None


def check_metadata(meta: dict[str, Any], skeleton: FeedbackModel,
                   shapes: dict[str, tuple[int, ...]], path: Path) -> None:
    """Raise CheckpointError unless the metadata describes the stored tensors: the arch label
    matches the architecture it names, and the model it builds has the stored shapes.

    ``skeleton``: the model the metadata builds, on the meta device (no memory).
    """
    arch = meta["model"].get("arch")
    config = meta.get("config")
    trained = config["model"].get("arch", arch) if isinstance(config, dict) and isinstance(
        config.get("model"), dict) else arch
    if trained != arch:
        raise CheckpointError(f"{path}: metadata names two architectures ({arch!r} in model, "
                              f"{trained!r} in config): the checkpoint was edited")
    entry = architecture(arch)
    if entry.fixed_layout is not None:  # the label must fit the layout
        with torch.device("meta"):
            reference = entry.build(**{k: skeleton.config[k] for k in entry.fixed_layout
                                       if k in skeleton.config}).config
        # the input statistics are data, not layout: a fixed layout trains with any
        layout = {k: v for k, v in skeleton.config.items() if k not in ("mean", "std")}
        reference = {k: v for k, v in reference.items() if k not in ("mean", "std")}
        if reference != layout:
            changed = sorted(k for k in reference if reference[k] != layout.get(k))
            raise CheckpointError(f"{path}: labelled {arch!r} but its layout differs from "
                                  f"{arch} in {changed}: the checkpoint was edited")
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    check_tensors(expected, shapes, str(path), arch)


def check_tensors(expected: dict[str, tuple[int, ...]], stored: dict[str, tuple[int, ...]],
                  source: str, arch: str | None) -> None:
    """CheckpointError for missing, extra or mis-shaped tensors (name -> shape on each side)."""
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    wrong = sorted(k for k in set(expected) & set(stored) if expected[k] != stored[k])
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {names[:5]}{' ...' if len(names) > 5 else ''}"
            for label, names in [("missing", missing), ("unexpected", unexpected),
                                 ("wrong shape", wrong)] if names
        )
        raise CheckpointError(f"{source} does not match {arch}: {detail}")


def load_weights(model: FeedbackModel, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model``; a clear error for missing, extra or mis-shaped tensors
    and for non-finite values (NaN or inf weights)."""
    check_tensors({k: tuple(v.shape) for k, v in model.state_dict().items()},
                  {k: tuple(v.shape) for k, v in state.items()}, source,
                  model.config.get("arch"))
    broken = sorted(k for k, v in state.items()
                    if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if broken:
        raise CheckpointError(f"{source}: non-finite (NaN or inf) values in {broken[:5]}"
                              f"{' ...' if len(broken) > 5 else ''}; refusing to load")
    model.load_state_dict(state)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint file a path names: a file, a run folder (its best checkpoint) or
    ``pretrained:NAME`` (a model of :mod:`neurocnnf.pretrained`, its sha256 checked)."""
    # (imported here: importing neurocnnf.pretrained runs its __init__, which imports this)
    from neurocnnf.pretrained.registry import PREFIX, resolve
    from neurocnnf.pretrained.registry import list as pretrained_names

    if str(path).startswith(PREFIX):
        return resolve(str(path))
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors", "model.safetensors"):
            if (path / name).exists():
                return path / name
        raise CheckpointError(f"{path}: folder has no best/last/model.safetensors checkpoint")
    if not path.exists():
        hint = (f" (the pretrained model of that name is {PREFIX}{path})"
                if str(path) in pretrained_names() else "")
        raise CheckpointError(f"checkpoint {path} does not exist{hint}")
    return path


def save_resume_state(path: Path, state: dict[str, Any]) -> None:
    """Optimizer/scheduler/progress for --resume (tensors and plain values only)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_resume_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"{path}: resume state cannot be loaded safely ({error})") from None
