"""``neurocnnf analyze neural`` and the workflow's neural rule: every model x layer (forward
and feedback) x iteration against every subject's RDM of the real brain data sets, the
commitment chosen on one set and reported on another, the questions (1)-(4) of
``analysis.neural``, and each model's CKA across iterations (on the first set's images).

Writes the ``layout.NeuralFiles`` under ``out``: per data set, the similarity (one row per
model RDM and region), per subject, and figures (with the RDM panels); every test with
rsatoolbox's FDR decision per data set, the commitment, its scores on the other sets (held
out), the CKA table and figures, and the summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from neurocnnf.analysis import neural
from neurocnnf.analysis.cka import iteration_cka_table
from neurocnnf.io import atomic_write
from neurocnnf.pipelines.layout import NeuralDatasetFiles, NeuralFiles

COMMIT_ON = "algonauts92"  # the set the commitment is chosen on (public); others are held out


def model_features(model, stimuli, iterations: int) -> dict[str, np.ndarray]:
    """variable -> (n, T+1, D) float32: forward taps, their feedback and h_hat of every
    stimulus of ``stimuli`` (the model's own iterations when it runs none)."""
    import torch

    from neurocnnf.activations import trace_arrays
    from neurocnnf.models import compared_iterations
    from neurocnnf.stimuli.perturb import render

    model.eval()
    iterations = compared_iterations(model, iterations)
    channels, size = model.input_shape[0], model.input_shape[1]
    layers = [*model.taps, "h_hat"]
    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(stimuli), 64):
        rows = np.arange(start, min(start + 64, len(stimuli)))
        images = render(stimuli, rows, channels, size, model).to(device)
        with torch.no_grad():
            arrays = trace_arrays(model, images, layers, iterations, None)
        parts.append({k: v for k, v in arrays.items()
                      if k in layers or k.endswith("_feedback")})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _commitment_region(region: str) -> str:
    return "EVC" if region == "EVC" else "IT"


def run_neural(models: dict[str, str], datasets: list[str], out: str | Path,
               method: str = "spearman", n_boot: int = 300, iterations: int = 5,
               focus: str | None = None, commitment_file: str | Path | None = None,
               seed: int = 0, data_root: str | Path | None = None,
               device: str = "cpu") -> dict:
    """Run the analysis for ``models`` (name -> checkpoint, run folder or pretrained:NAME) on
    ``datasets`` (see ``neurocnnf.data.brain_datasets``), the models on ``device``; returns
    the summary."""
    from neurocnnf.data.brain import brain_datasets, load_brain_rdms
    from neurocnnf.stimuli import brain_stimuli
    from neurocnnf.train import load_model

    known = brain_datasets()
    unknown = [d for d in datasets if d not in known]
    if unknown:
        raise ValueError(f"unknown brain data set(s) {unknown}; known: {', '.join(known)}")
    if commitment_file is None and COMMIT_ON not in datasets:
        raise ValueError(f"the commitment is chosen on {COMMIT_ON}: include it in the data "
                         "sets, or pass the commitment.json of a run that did")
    focus = focus or next(iter(models))
    files = NeuralFiles(out)
    loaded = {name: load_model(source, map_location=device) for name, source in models.items()}
    taps = {name: list(m.taps) for name, m in loaded.items()}
    ordered = sorted(datasets, key=lambda d: d != COMMIT_ON)  # the commitment's set first
    chosen = None if commitment_file is None else _read_commitment(commitment_file, models)
    results: dict[str, list[neural.RegionResult]] = {}
    panels: dict[str, _Panels] = {}
    for dataset in ordered:
        stimuli = brain_stimuli(dataset, data_root)
        features = {name: model_features(m, stimuli, iterations) for name, m in loaded.items()}
        if dataset == ordered[0]:
            _write_cka(files, iteration_cka_table(features))
        index, rdms = neural.model_rdms(features, taps)
        brain = {region: load_brain_rdms(dataset, region, data_root)
                 for region in known[dataset]}
        results[dataset] = [neural.evaluate_region(index, rdms, b, method, n_boot, seed)
                            for b in brain.values()]
        categories = stimuli.metadata.get("category")
        panels[dataset] = _Panels(index, rdms, {r: b.rdms.mean(0) for r, b in brain.items()},
                                  None if categories is None else list(categories))
        if dataset == COMMIT_ON and chosen is None:
            chosen = {r.region: neural.commitment(r) for r in results[dataset]}
    tests, held_out = [], []
    for dataset, region_results in results.items():
        _write_dataset(files.dataset(dataset), region_results, chosen, focus)
        _write_rdm_panels(files.dataset(dataset).rdms, panels[dataset], chosen["IT"][focus],
                          focus)
        tests.append(neural.corrected(_questions(region_results, chosen, focus)))
        if dataset != COMMIT_ON:
            for r in region_results:
                held_out.append(neural.committed_scores(r, chosen[_commitment_region(
                    r.region)]))
    test_table = pd.concat(tests, ignore_index=True) if tests else pd.DataFrame()
    _write_csv(test_table, files.tests)
    if held_out:
        _write_csv(pd.concat(held_out, ignore_index=True), files.held_out)
    commitment = {"chosen_on": COMMIT_ON if commitment_file is None else str(commitment_file),
                  "method": method, "rule": "forward layer and iteration with the highest "
                  "mean similarity over subjects", "regions": chosen}
    if commitment_file is None:
        _write_json(commitment, files.commitment)
    summary = {"models": models, "datasets": ordered, "method": method, "n_boot": n_boot,
               "focus": focus, "commitment": chosen, "chosen_on": commitment["chosen_on"],
               "cka_on": ordered[0],
               "ceilings": {f"{r.dataset}/{r.region}": [float(r.table["ceiling_low"].iloc[0]),
                                                        float(r.table["ceiling_high"].iloc[0])]
                            for rs in results.values() for r in rs}}
    _write_json(summary, files.summary)
    return summary


@dataclass
class _Panels:
    """What a data set's RDM panels show: the model RDMs (``neural.model_rdms``), each
    region's subject-mean RDM and the stimuli's categories (None: no category column)."""

    index: pd.DataFrame
    rdms: np.ndarray
    brain: dict[str, np.ndarray]
    categories: list[str] | None


def _write_rdm_panels(path: Path, panels: _Panels, pick: dict, focus: str) -> None:
    """The focus model's committed IT layer at iteration 0 and its last iteration beside the
    brain RDMs."""
    from neurocnnf.viz.analysis import rdm_panels
    from neurocnnf.viz.style import save_figure

    index = panels.index
    rows = np.flatnonzero((index["model"] == focus) & (index["kind"] == "forward")
                          & (index["layer"] == pick["layer"]))
    shown = {f"{focus} {pick['layer']} t={index['iteration'].iloc[i]}": panels.rdms[i]
             for i in dict.fromkeys([rows[0], rows[-1]])}
    save_figure(rdm_panels({**shown, **{f"{region} (mean)": rdm
                                        for region, rdm in panels.brain.items()}},
                           panels.categories), path)


def _write_cka(files: NeuralFiles, table: pd.DataFrame) -> None:
    """cka.csv, and one figure per model run with iterations."""
    from neurocnnf.viz.analysis import cka_matrices
    from neurocnnf.viz.style import save_figure

    _write_csv(table, files.cka)
    for model, part in table.groupby("model", sort=False):
        save_figure(cka_matrices(part, str(model)), files.cka_figure(str(model)))


def _read_commitment(path: str | Path, models: dict[str, str]) -> dict:
    """The regions of a commitment.json, for exactly the ``models`` named (ValueError if one
    has none)."""
    try:
        regions = json.loads(Path(path).read_text())["regions"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a commitment.json of `analyze neural` ({error})") \
            from None
    missing = sorted({m for m in models for picks in regions.values() if m not in picks})
    if missing:
        raise ValueError(f"{path} commits no layer for {missing}; it has "
                         f"{sorted(next(iter(regions.values())))}")
    return {region: {m: picks[m] for m in models} for region, picks in regions.items()}


def _questions(region_results: list[neural.RegionResult], chosen: dict, focus: str
               ) -> list[dict]:
    tests = []
    by_region = {r.region: r for r in region_results}
    for r in region_results:
        picks = chosen[_commitment_region(r.region)]
        tests += neural.iteration_tests(r, picks)
        tests += neural.model_tests(r, picks, focus)
    if "EVC" in by_region and "IT" in by_region:
        iterations = {m: c["iteration"] for m, c in chosen["IT"].items()}
        tests += neural.hierarchy_tests(by_region["EVC"], by_region["IT"], iterations)
        tests += neural.feedback_tests(by_region["EVC"])
    return tests


def _write_dataset(files: NeuralDatasetFiles, region_results: list[neural.RegionResult],
                   chosen: dict, focus: str) -> None:
    from neurocnnf.viz import neural as fig
    from neurocnnf.viz.style import save_figure

    table = pd.concat([r.table for r in region_results], ignore_index=True)
    subjects = pd.concat([r.subjects for r in region_results], ignore_index=True)
    _write_csv(table, files.similarity)
    _write_csv(subjects, files.subjects)
    save_figure(fig.similarity_vs_iteration(table, subjects, chosen, focus), files.figure)
    iterations = {m: c["iteration"] for m, c in chosen["IT"].items()}
    save_figure(fig.layer_hierarchy(table, iterations), files.hierarchy)
    for r in region_results:
        picks = chosen[_commitment_region(r.region)]
        rows = [r.index_of(m, c["layer"], "forward", c["iteration"]) for m, c in picks.items()]
        difference, p = neural.pairwise(r, rows)
        significant = np.zeros_like(p, dtype=bool)
        finite = np.isfinite(p)
        if finite.any():
            from neurocnnf.analysis.rsa_inference import fdr_significant

            significant[finite] = fdr_significant(p[finite])
        labels = [f"{m}\n{c['layer']} t={c['iteration']}" for m, c in picks.items()]
        save_figure(fig.model_comparison(labels, difference, p, significant,
                                         f"{r.dataset} {r.region}"),
                    files.model_comparison(r.region))


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def _write_json(content: dict, path: Path) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(content, indent=2,
                                                                   default=float)))
