"""``neurocnnf corruptions``: accuracy under CIFAR-10-C's common corruptions per severity and
test iteration, for several models on the same test images (Fig. 5d on natural images).

Every model sees the same corrupted images (noise seeded per image). For each model,
corruption, severity 0-5 and test iteration t in ``iterations`` (capped at nothing: a plain CNN
gives the same answer at every t), the last logits' accuracy is kept, with each image's
correctness, so that CNN-F and its twin are compared image by image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from neurocnnf.attacks.paired import pack
from neurocnnf.data import ImageDataset
from neurocnnf.io import atomic_write
from neurocnnf.models import FeedbackModel
from neurocnnf.stimuli.corruptions import CORRUPTIONS, SEVERITIES, corrupt

RESULTS = "corruptions.csv"
FIGURE = "corruptions.png"
ITERATIONS_FIGURE = "corruptions_iterations.png"


@torch.no_grad()
def correct_by_iteration(model: FeedbackModel, images: torch.Tensor, labels: torch.Tensor,
                         iterations: int, batch_size: int = 250) -> np.ndarray:
    """(iterations + 1, N) bool: whether the logits of pass t classify each image correctly."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device)
        trace = model(x, iterations=iterations)
        out.append(torch.stack([z.argmax(1) == y for z in trace.logits]).cpu().numpy())
    return np.concatenate(out, axis=1)


def evaluate_corruptions(models: dict[str, FeedbackModel], data: ImageDataset,
                         iterations: Sequence[int] = (0, 1, 2, 3, 5),
                         corruptions: Sequence[str] = CORRUPTIONS, seed: int = 0,
                         batch_size: int = 250, progress: bool = True) -> pd.DataFrame:
    """One row per (model, corruption, severity, iterations): accuracy, n and the per-image
    correctness ('correct', ``attacks.paired.pack``'s 'N:HEX'). ``iterations``: test
    iterations T; a model is run once at max(T) and read at each T (pass t of a run equals a
    run of t passes)."""
    top = max(iterations)
    images = data.images.float().div(255.0)
    rows = []
    total = (1 + len(corruptions) * (len(SEVERITIES) - 1)) * len(models)
    bar = tqdm(total=total, desc="corruptions", disable=not progress)
    for name in corruptions:
        for severity in SEVERITIES:
            if severity == 0 and name != corruptions[0]:
                continue  # severity 0 is the clean set: computed once
            shown = corrupt(images, name, severity, seed)
            for label, model in models.items():
                correct = correct_by_iteration(model, shown, data.labels, top, batch_size)
                for t in iterations:
                    bits = correct[t]
                    rows.append({"model": label, "corruption": "none" if severity == 0
                                 else name, "severity": severity, "iterations": t,
                                 "accuracy": float(bits.mean()), "n": len(bits),
                                 "correct": pack(bits)})
                bar.update(1)
    bar.close()
    return pd.DataFrame(rows)


def run_corruptions(models: dict[str, FeedbackModel], data: ImageDataset, out: str | Path,
                    default_iterations: dict[str, int], **kwargs) -> pd.DataFrame:
    """Write corruptions.csv and the figures under ``out``; returns the table.
    ``default_iterations``: each model's own T (its curve in the severity figure); the
    accuracy-by-iterations figure is drawn when one of the models has feedback (T > 0)."""
    from neurocnnf.viz.corruptions import accuracy_by_iteration, accuracy_by_severity
    from neurocnnf.viz.style import save_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = evaluate_corruptions(models, data, **kwargs)
    atomic_write(out / RESULTS, lambda tmp: table.to_csv(tmp, index=False))
    atomic_write(out / "models.json", lambda tmp: Path(tmp).write_text(
        json.dumps(default_iterations, indent=2)))
    save_figure(accuracy_by_severity(table, default_iterations), out / FIGURE)
    if any(t > 0 for t in default_iterations.values()):
        save_figure(accuracy_by_iteration(table, default_iterations), out / ITERATIONS_FIGURE)
    return table
