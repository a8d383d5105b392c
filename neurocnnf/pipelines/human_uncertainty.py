"""``neurocnnf analyze human-uncertainty`` and the workflow's rule: models' per-iteration
predictive distributions on the CIFAR-10 test images against CIFAR-10H's human label
distributions (see ``analysis.human_uncertainty``).

Writes the ``layout.HumanUncertaintyFiles`` under ``out``: per image (human entropy,
disputed, each model's settling and halting iteration), per iteration, the paired comparisons,
entropy against settling, the summary and two figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from neurocnnf.analysis import human_uncertainty as hu
from neurocnnf.analysis.difficulty import settling_iteration, spearman_with_ci
from neurocnnf.io import atomic_write
from neurocnnf.pipelines.layout import HumanUncertaintyFiles

CORRELATION_COLUMNS = ["model", "iteration_kind", "rho", "ci_low", "ci_high", "n", "n_groups"]


def model_outputs(model, images, iterations: int, tolerance: float, batch_size: int = 250
                  ) -> dict[str, np.ndarray]:
    """logits and probabilities (n, T+1, C) of uint8 images (n, C, H, W), and, for a model
    that halts, 'halted_at' (n,) with adaptive halting at ``tolerance``."""
    import torch

    from neurocnnf.activations import trace_arrays
    from neurocnnf.models import compared_iterations, supports_halting

    model.eval()
    iterations = compared_iterations(model, iterations)
    halts = iterations > 0 and supports_halting(model)
    device = next(model.parameters()).device
    parts: dict[str, list[np.ndarray]] = {"logits": [], "probabilities": [], "halted_at": []}
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].float().div(255.0).to(device)
        with torch.no_grad():
            full = trace_arrays(model, x, ["logits", "probabilities"], iterations, None, False)
            if halts:
                parts["halted_at"].append(trace_arrays(model, x, ["logits"], iterations, None,
                                                       False, halt=tolerance)["halted_at"])
        parts["logits"].append(full["logits"])
        parts["probabilities"].append(full["probabilities"])
    return {k: np.concatenate(v) for k, v in parts.items() if v}


def run_human_uncertainty(models: dict[str, str], out: str | Path, iterations: int = 5,
                          tolerance: float = 0.05, n_images: int | None = None,
                          n_boot: int = 1000, seed: int = 0,
                          data_root: str | Path | None = None, device: str = "cpu") -> dict:
    """Run the analysis for ``models`` (name -> checkpoint, run folder or pretrained:NAME; the
    first is the model of interest, the others its baselines) on the CIFAR-10 test set (or a
    seeded random subset of ``n_images``) on ``device``; returns the summary."""
    from neurocnnf.data.cifar10h import cifar10_test_in_original_order, cifar10h
    from neurocnnf.train import load_model

    human = cifar10h(data_root)
    data = cifar10_test_in_original_order(data_root)
    chosen = np.arange(len(data)) if n_images is None else np.sort(
        np.random.default_rng(seed).choice(len(data), n_images, replace=False))
    images = data.images[chosen]
    files = HumanUncertaintyFiles(out)
    per_image = pd.DataFrame({"test_index": chosen, "label": human.labels[chosen],
                              "human_entropy": human.entropy()[chosen],
                              "human_plurality": human.plurality()[chosen],
                              "disputed": hu.disputed(human.probs[chosen])})
    probabilities, correlations = {}, []
    for name, source in models.items():
        model = load_model(source, map_location=device)
        if tuple(model.input_shape) != tuple(images.shape[1:]):
            raise ValueError(f"{name}: a {model.input_shape} model cannot read the 3x32x32 "
                             "CIFAR-10 images (Fashion-MNIST models have no CIFAR-10H)")
        outputs = model_outputs(model, images, iterations, tolerance)
        probabilities[name] = outputs["probabilities"]
        if outputs["logits"].shape[1] > 1:  # a model without iterations does not settle
            per_image[f"{name}_settling"] = settling_iteration(outputs["logits"], tolerance)
        per_image[f"{name}_correct_last"] = outputs["logits"][:, -1].argmax(1) == per_image[
            "label"]
        if "halted_at" in outputs:
            per_image[f"{name}_halted_at"] = outputs["halted_at"].astype(int)
        for kind in ("settling", "halted_at"):
            column = f"{name}_{kind}"
            if column in per_image:
                correlations.append({"model": name, "iteration_kind": kind,
                                     **spearman_with_ci(per_image["human_entropy"],
                                                        per_image[column], n_boot, seed)})
    table, comparisons = hu.per_iteration(probabilities, human.probs[chosen], n_boot, seed)
    correlations_table = pd.DataFrame(correlations, columns=CORRELATION_COLUMNS)
    for frame, path in ((per_image, files.per_image), (table, files.per_iteration),
                        (comparisons, files.comparisons),
                        (correlations_table, files.entropy_vs_iteration)):
        atomic_write(path, lambda tmp, f=frame: f.to_csv(tmp, index=False))
    _figures(files, per_image, table, next(iter(models)))
    summary = {"models": models, "n_images": len(chosen), "iterations": iterations,
               "tolerance": tolerance, "n_boot": n_boot,
               "disputed_share": hu.DISPUTED_SHARE, "n_disputed": int(per_image["disputed"].sum()),
               "entropy_vs_iteration": correlations}
    atomic_write(files.summary,
                 lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2, default=float)))
    return summary


def _figures(files: HumanUncertaintyFiles, per_image: pd.DataFrame, table: pd.DataFrame,
             focus: str) -> None:
    from neurocnnf.viz import human as fig
    from neurocnnf.viz.style import save_figure

    save_figure(fig.entropy_vs_settling(per_image, focus), files.entropy_figure)
    save_figure(fig.cross_entropy_vs_iteration(table), files.cross_entropy_figure)
