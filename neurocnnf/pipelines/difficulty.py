"""``neurocnnf analyze difficulty`` and the workflow's difficulty rule: settling iteration and
accuracy gain per perturbation level, from an activation store of logits and probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from neurocnnf.activations import open_activations
from neurocnnf.analysis.difficulty import (
    accuracy_gain_by_level,
    first_correct_iteration,
    settling_iteration,
    spearman_with_ci,
    speed_accuracy,
)
from neurocnnf.pipelines.layout import DifficultyFiles


def run_difficulty(activations: str | Path, out: str | Path, tolerance: float = 0.05
                   ) -> dict:
    """Write the :class:`DifficultyFiles` under ``out`` (one row per stimulus, accuracy per
    level, speed-accuracy, the summary and its figure); returns the summary. The store needs
    'label', 'level', 'logits' and 'probabilities'."""
    from neurocnnf.viz import analysis as fig
    from neurocnnf.viz.style import save_figure

    files = DifficultyFiles(out)
    files.folder.mkdir(parents=True, exist_ok=True)
    ds = open_activations(activations)
    for needed in ("label", "level", "logits", "probabilities"):
        if needed not in ds:
            raise ValueError(f"{activations}: the difficulty analysis needs {needed!r}")
    logits, labels, levels = ds["logits"].values, ds["label"].values, ds["level"].values
    table = pd.DataFrame({
        "stimulus_id": ds["stimulus_id"].values, "level": levels,
        "settling_iteration": settling_iteration(logits, tolerance),
        "first_correct_iteration": first_correct_iteration(logits, labels),
        "confidence_first": ds["probabilities"].values[:, 0].max(1),
        "correct_first": logits[:, 0].argmax(1) == labels,
        "correct_last": logits[:, -1].argmax(1) == labels,
    })
    if "halted_at" in ds:  # extracted with adaptive halting: where each image stopped
        table["halted_at"] = ds["halted_at"].values.astype(int)
    table.to_csv(files.table, index=False)
    accuracy = accuracy_gain_by_level(logits, labels, levels)
    accuracy.to_csv(files.accuracy, index=False)
    speed_accuracy(ds["probabilities"].values, labels).to_csv(files.speed_accuracy,
                                                               index=False)
    # one image at several levels: its rows are resampled together (whole images)
    images = ds["source_id"].values if "source_id" in ds.coords else None
    summary = {"settling_vs_level": spearman_with_ci(table["level"],
                                                     table["settling_iteration"],
                                                     groups=images),
               # difficulty as the plain CNN pass sees it: low confidence at t = 0
               "settling_vs_first_pass_uncertainty": spearman_with_ci(
                   1 - table["confidence_first"], table["settling_iteration"], groups=images),
               "mean_settling_by_level": table.groupby("level")["settling_iteration"].mean()
               .to_dict(),
               "accuracy_gain_by_level": accuracy.set_index("level")["gain"].to_dict()}
    files.summary.write_text(json.dumps(summary, indent=2, default=float))
    save_figure(fig.settling_vs_difficulty(table, accuracy, level_name(ds)), files.figure)
    return summary


def level_name(ds) -> str:
    """What the store's perturbation level means, with its unit (one kind of perturbation:
    e.g. 'noise level (noise sd in pixel scale)'), else 'perturbation level'."""
    from neurocnnf.stimuli.perturb import RANGES

    kinds = set(ds["perturbation"].values) - {"none"} if "perturbation" in ds.coords else set()
    if len(kinds) != 1:
        return "perturbation level"
    (kind,) = kinds
    return f"{kind} level ({RANGES[kind][2]})" if kind in RANGES else f"{kind} level"
