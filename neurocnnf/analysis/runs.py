"""Analysis runs on activation stores: tables (CSV) and figures (PNG) under an output folder.
These are what ``neurocnnf analyze`` and the workflows call."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from neurocnnf.activations import open_activations
from neurocnnf.analysis import brain_rsa
from neurocnnf.analysis.difficulty import (
    first_correct_iteration,
    settling_iteration,
    spearman_with_ci,
    speed_accuracy,
)


def run_rsa(activations: str | Path, out: str | Path, method: str = "spearman",
            n_boot: int = 100, data_root=None) -> pd.DataFrame:
    """RSA of every layer x iteration with macaque and human IT (Kriegeskorte 92 images)."""
    from neurocnnf.data import kriegeskorte92
    from neurocnnf.io import save_figure as save
    from neurocnnf.viz import analysis as fig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = open_activations(activations)
    k92 = kriegeskorte92(data_root)
    table = brain_rsa.layer_iteration_rsa(ds, k92, method, n_boot)
    ceiling = brain_rsa.human_ceiling(k92, method)
    table.to_csv(out / "rsa.csv", index=False)
    (out / "noise_ceiling.json").write_text(json.dumps({"human_IT": ceiling, "method": method}))
    save(fig.similarity_vs_iteration(table, ceiling), out / "rsa_vs_iteration.png")
    layers = brain_rsa.feature_layers(ds)
    clean = brain_rsa.clean_presentations(ds)
    shown = layers[-2]  # the deepest feature layer before the logits
    model_rdms = {f"{shown} t={t}": brain_rsa.rdm(clean[shown].values[:, t])
                  for t in (0, ds.sizes["iteration"] - 1)}
    save(fig.rdm_panels({**model_rdms, "macaque IT": k92.rdms["macaque_IT"],
                         "human IT": k92.rdms["human_IT"]}), out / "rdms.png")
    for layer in layers:
        save(fig.cka_matrix(brain_rsa.iteration_cka(ds, layer), layer), out / f"cka_{layer}.png")
    return table


def run_difficulty(activations: str | Path, out: str | Path, tolerance: float = 0.05
                   ) -> dict:
    """Settling iteration and accuracy per perturbation level (needs 'label' and 'level')."""
    from neurocnnf.io import save_figure as save
    from neurocnnf.viz import analysis as fig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = open_activations(activations)
    for needed in ("label", "level", "logits", "probabilities"):
        if needed not in ds:
            raise ValueError(f"{activations}: the difficulty analysis needs {needed!r}")
    logits, labels = ds["logits"].values, ds["label"].values
    table = pd.DataFrame({
        "stimulus_id": ds["stimulus_id"].values, "level": ds["level"].values,
        "settling_iteration": settling_iteration(logits, tolerance),
        "first_correct_iteration": first_correct_iteration(logits, labels),
        "confidence_first": ds["probabilities"].values[:, 0].max(1),
        "correct_first": logits[:, 0].argmax(1) == labels,
        "correct_last": logits[:, -1].argmax(1) == labels,
    })
    if "halted_at" in ds:  # extracted with adaptive halting: where each image stopped
        table["halted_at"] = ds["halted_at"].values.astype(int)
    table.to_csv(out / "difficulty.csv", index=False)
    speed_accuracy(ds["probabilities"].values, labels).to_csv(out / "speed_accuracy.csv",
                                                               index=False)
    summary = {"settling_vs_level": spearman_with_ci(table["level"],
                                                     table["settling_iteration"]),
               # difficulty as the plain CNN pass sees it: low confidence at t = 0
               "settling_vs_first_pass_uncertainty": spearman_with_ci(
                   1 - table["confidence_first"], table["settling_iteration"]),
               "mean_settling_by_level": table.groupby("level")["settling_iteration"].mean()
               .to_dict(),
               "accuracy_gain_by_level": (table.groupby("level")["correct_last"].mean()
                                          - table.groupby("level")["correct_first"].mean())
               .to_dict()}
    (out / "difficulty_summary.json").write_text(json.dumps(summary, indent=2, default=float))
    save(fig.settling_vs_difficulty(table), out / "difficulty.png")
    return summary


def run_predictive_coding(checkpoints: dict[str, str | Path], out: str | Path,
                          images: str = "fashion_mnist:test:1000",
                          noise_levels: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4),
                          iterations: int = 5, batch_size: int = 250, progress: bool = True,
                          data_root=None) -> dict:
    """Compare trained models (name -> checkpoint) on the same images: tables (CSV), figures
    (PNG) and summary.json under ``out``. ``images``: 'dataset:split:N'."""
    import torch

    from neurocnnf.analysis import predictive_coding as pc
    from neurocnnf.io import save_figure as save
    from neurocnnf.stimuli import load_stimuli, render
    from neurocnnf.train import load_model
    from neurocnnf.viz import predictive as fig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models = {name: load_model(path).eval() for name, path in checkpoints.items()}
    shapes = {name: model.input_shape for name, model in models.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"the models take different images: {shapes}")
    channels, size, _ = next(iter(shapes.values()))
    stimuli = load_stimuli(images, root=data_root)
    if "label" not in stimuli.metadata:
        raise ValueError(f"{images}: the comparison needs labelled images")
    x = render(stimuli, np.arange(len(stimuli)), channels, size)
    labels = torch.tensor(stimuli.metadata["label"].to_numpy(), dtype=torch.long)
    tables = pc.compare(models, x, labels, noise_levels, iterations, batch_size=batch_size,
                        progress=progress)
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    summary = pc.summary(tables)
    (out / "summary.json").write_text(json.dumps(
        {"images": images, "iterations": iterations, "models": {
            name: str(path) for name, path in checkpoints.items()}, "results": summary},
        indent=2))
    save(fig.comparison_panels(tables), out / "comparison.png")
    save(fig.ablation_accuracy(tables), out / "ablations.png")
    return summary
