"""``neurocnnf analyze predictive-coding`` and the workflow's predictive_coding rule: CNN-F,
the predictive-coding comparator and the feedforward baseline on the same noisy images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from neurocnnf.pipelines.layout import PredictiveCodingFiles
from neurocnnf.stimuli import StimulusSet, load_stimuli, perturb, render


def noisy_images(stimuli: StimulusSet, levels: tuple[float, ...], channels: int, size: int,
                 seed: int = 0) -> dict[float, Tensor]:
    """Noise level -> (N, channels, size, size) float images in [0, 1], the N stimuli of
    ``stimuli`` with Gaussian pixel noise of that sd (``perturb`` + ``render``: each
    stimulus's noise is seeded by ``seed`` and its row, the same in any batch). Level 0, the
    clean images, is always included."""
    levels = tuple(dict.fromkeys([0.0, *map(float, levels)]))
    grid = perturb(stimuli, "noise", levels, seed)
    rendered = render(grid, np.arange(len(grid)), channels, size)
    return dict(zip(levels, rendered.split(len(grid) // len(levels)), strict=True))


def run_predictive_coding(checkpoints: dict[str, str | Path], out: str | Path,
                          images: str = "fashion_mnist:test:1000",
                          noise_levels: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4),
                          iterations: int = 5, batch_size: int = 250, progress: bool = True,
                          data_root: str | Path | None = None, seed: int = 0,
                          device: str = "cpu") -> dict:
    """Compare trained models (name -> checkpoint) on the same images: the
    :class:`PredictiveCodingFiles` under ``out`` (one table per quantity, the summary and two
    figures); returns the summary.
    ``images``: a stimulus-set spec ('dataset:split:N'), labelled; ``device``: where the models
    run (a torch device name)."""
    from neurocnnf.analysis import predictive_coding as pc
    from neurocnnf.train import load_model
    from neurocnnf.viz import predictive as fig
    from neurocnnf.viz.style import save_figure

    files = PredictiveCodingFiles(out)
    files.folder.mkdir(parents=True, exist_ok=True)
    models = {name: load_model(path, map_location=device).eval()
              for name, path in checkpoints.items()}
    shapes = {name: model.input_shape for name, model in models.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"the models take different images: {shapes}")
    channels, size, _ = next(iter(shapes.values()))
    stimuli = load_stimuli(images, root=data_root)
    if "label" not in stimuli.metadata:
        raise ValueError(f"{images}: the comparison needs labelled images")
    x = noisy_images(stimuli, noise_levels, channels, size, seed)
    labels = torch.tensor(stimuli.metadata["label"].to_numpy(), dtype=torch.long)
    tables = pc.compare(models, x, labels, iterations, batch_size=batch_size, progress=progress)
    for name, table in tables.items():
        table.to_csv(files.table(name), index=False)
    summary = pc.summary(tables)
    files.summary.write_text(json.dumps(
        {"images": images, "iterations": iterations, "models": {
            name: str(path) for name, path in checkpoints.items()}, "results": summary},
        indent=2))
    save_figure(fig.comparison_panels(tables), files.comparison)
    save_figure(fig.ablation_accuracy(tables), files.ablations)
    return summary
