"""Perturbed stimulus sets on a grid of levels, and rendering stimuli as model input.

Kinds and the meaning of their level (images in [0, 1], at model resolution):
  noise       Gaussian noise with standard deviation ``level``, clipped to [0, 1]
  blur        Gaussian blur with sigma ``level`` pixels
  contrast    contrast kept: mean + level * (x - mean) (1 = unchanged, 0 = flat grey)
  occlusion   a mid-grey square covering a fraction ``level`` of the image, seeded position
  adversarial L_inf PGD-10 of radius ``level`` on the model's first pass (needs the model)
Every perturbed stimulus keeps its source's ``source_id``; its own ``stimulus_id`` is
``"<source_id>|<kind>=<level>"``. Random draws are seeded per stimulus, so a stimulus renders
the same in any batch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neurocnnf.extras import require
from neurocnnf.stimuli.sets import StimulusError, StimulusSet, convert

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("noise", "blur", "contrast", "occlusion", "adversarial")
IDENTITY = {"noise": 0.0, "blur": 0.0, "contrast": 1.0, "occlusion": 0.0, "adversarial": 0.0}
# the levels each kind accepts, inclusive: (low, high, what the level means)
RANGES = {"noise": (0.0, 1.0, "noise sd in pixel scale"), "blur": (0.0, 16.0, "sigma in pixels"),
          "contrast": (0.0, 1.0, "contrast kept"), "occlusion": (0.0, 1.0, "fraction covered"),
          "adversarial": (0.0, 1.0, "L_inf radius in pixel scale")}


def check_levels(kind: str, levels: list[float] | tuple[float, ...]) -> list[float]:
    """``levels`` as floats; StimulusError for an unknown kind, a level outside the kind's
    range (NaN included) or a level given twice."""
    if kind not in KINDS:
        raise StimulusError(f"unknown perturbation {kind!r}; choose from {KINDS}")
    if not len(levels):
        raise StimulusError("perturb needs at least one level")
    low, high, meaning = RANGES[kind]
    values = [float(v) for v in levels]
    bad = [v for v in values if not low <= v <= high]  # False for NaN too
    if bad:
        raise StimulusError(f"{kind} levels {bad} are out of range: {kind} takes {meaning} in "
                            f"[{low:g}, {high:g}]")
    names = [f"{v:g}" for v in values]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StimulusError(f"{kind} level(s) {repeated} given twice: each level once")
    return values


def perturb(stimuli: StimulusSet, kind: str, levels: list[float] | tuple[float, ...],
            seed: int = 0) -> StimulusSet:
    """A set with one row per (stimulus, level); ``levels`` may include the identity level.

    Only unperturbed stimuli are perturbed: a set is perturbed along one kind."""
    levels = check_levels(kind, levels)
    base = stimuli.metadata[stimuli.metadata["perturbation"] == "none"]
    if base.empty:
        raise StimulusError(f"{stimuli.identifier} has no unperturbed stimuli to perturb with "
                            f"{kind} (it is perturbed already: one --perturb per set)")
    frames = []
    for level in levels:
        frame = base.copy()
        frame["perturbation"] = kind
        frame["level"] = float(level)
        frame["stimulus_id"] = [f"{s}|{kind}={level:g}" for s in frame["source_id"]]
        frames.append(frame)
    metadata = require("pandas", "analysis", "stimulus sets").concat(frames, ignore_index=True)
    return StimulusSet(f"{stimuli.identifier}-{kind}", metadata, stimuli.images, stimuli.paths,
                       seed, dict(stimuli.notes))


def _generator(seed: int, row: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + row)


def _blur(x: Tensor, sigma: float) -> Tensor:
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    grid = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (grid / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[0]
    y = F.pad(x[None], (radius,) * 4, mode="reflect" if radius < x.shape[-1] else "replicate")
    y = F.conv2d(y, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.conv2d(y, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return y[0]


def apply(x: Tensor, kind: str, level: float, generator: torch.Generator) -> Tensor:
    """Perturb one image (C, H, W) in [0, 1] (all kinds but 'adversarial')."""
    if kind == "none" or level == IDENTITY.get(kind):
        return x
    if kind == "noise":
        return (x + level * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    if kind == "blur":
        return _blur(x, level).clamp(0, 1)
    if kind == "contrast":
        mean = x.mean(dim=(1, 2), keepdim=True)
        return (mean + level * (x - mean)).clamp(0, 1)
    if kind == "occlusion":
        _, height, width = x.shape
        side = max(1, round(math.sqrt(min(level, 1.0)) * min(height, width)))
        top = int(torch.randint(0, height - side + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - side + 1, (1,), generator=generator))
        out = x.clone()
        out[:, top:top + side, left:left + side] = 0.5
        return out
    raise StimulusError(f"perturbation {kind!r} cannot be applied per image")


def render(stimuli: StimulusSet, rows: np.ndarray, channels: int, size: int,
           model=None) -> Tensor:
    """Model input for the given metadata rows: float (B, channels, size, size) in [0, 1]."""
    meta = stimuli.metadata.iloc[rows]
    sources = stimuli.source_images(meta["source_index"].to_numpy(), size)
    images = torch.stack([convert(s, channels, size) for s in sources])
    kinds, levels = meta["perturbation"].to_numpy(), meta["level"].to_numpy(dtype=float)
    if "rendered" in meta:  # images written with their perturbation already applied
        kinds = np.where(meta["rendered"].to_numpy(dtype=bool), "none", kinds)
    out = images.clone()
    for i, (row, kind, level) in enumerate(zip(rows, kinds, levels, strict=True)):
        if kind != "adversarial":
            out[i] = apply(images[i], kind, float(level), _generator(stimuli.seed, int(row)))
    adversarial = np.flatnonzero(kinds == "adversarial")
    if len(adversarial):
        out[adversarial] = _adversarial(images[adversarial], levels[adversarial], meta.iloc[
            adversarial], model, stimuli.seed, rows[adversarial])
    return out


def _adversarial(images: Tensor, levels: np.ndarray, meta: pd.DataFrame, model, seed: int,
                 rows: np.ndarray) -> Tensor:
    from neurocnnf.attacks.pgd import logits_fn, pgd

    if model is None:
        raise StimulusError("adversarial stimuli need the model: pass model= when rendering")
    device = next(model.parameters()).device
    x = images.to(device)
    with torch.no_grad():
        predicted = model(x, iterations=0).first.argmax(1)
    labels = torch.tensor(meta["label"].to_numpy(), device=device) if "label" in meta \
        else predicted  # without labels: move away from the model's own clean answer
    out = x.clone()
    fn = logits_fn(model, "first")
    for level in np.unique(levels):
        pick = torch.as_tensor(np.flatnonzero(levels == level), device=device)
        if level == IDENTITY["adversarial"]:
            continue
        generator = _generator(seed, int(rows[int(pick[0])]))
        out[pick] = pgd(fn, x[pick], labels[pick], float(level), float(level) / 4, 10,
                        generator=generator)
    return out.cpu()
