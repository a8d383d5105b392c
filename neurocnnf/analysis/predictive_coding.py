"""CNN-F, the predictive-coding comparator and the feedforward baseline on the same axes.

Every metric is read from the Trace, per image, per iteration:

- prediction error at a layer: RMS over units of (state_t - prediction made from state t), for
  t = 0..T-1; layer ``layer_k`` is h_hat_t against the feedback reconstruction g_t(k), the other
  layers are taps with recorded feedback;
- representational change: ||f_t - f_{t-1}|| / ||f_0|| for t = 1..T (0 at t = 0);
- noisy-vs-clean correlation distance: 1 - Pearson r between a layer's state for a noisy image
  and for its clean version at the same iteration;
- accuracy per iteration.
Each runs with the feedback intact and with the two ablations of ``FEEDBACK_MODES``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from neurocnnf.models import Trace, compared_iterations

LAYER_K = "layer_k"


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).float()


def rms(x: Tensor) -> Tensor:
    """Per-sample root mean square over all units: (N, ...) -> (N,)."""
    return _flat(x).pow(2).mean(1).sqrt()


def prediction_errors(trace: Trace) -> dict[str, Tensor]:
    """Layer -> (N, T): RMS(state_t - top-down prediction of it made from state t)."""
    pairs = {LAYER_K: (trace.h_hat, trace.reconstruction)}
    pairs.update({name: (trace.forward[name], g) for name, g in trace.feedback.items()
                  if name in trace.forward})
    return {name: torch.stack([rms(states[t] - p) for t, p in enumerate(predictions)], 1)
            for name, (states, predictions) in pairs.items() if predictions}


def _changing_states(trace: Trace) -> dict[str, list[Tensor]]:
    """Layers whose state can change over iterations (encoder taps repeat one tensor)."""
    states = {LAYER_K: trace.h_hat, **trace.forward, "logits": trace.logits}
    return {name: values for name, values in states.items()
            if not all(v is values[0] for v in values[1:]) or len(values) == 1}


def representational_change(trace: Trace) -> dict[str, Tensor]:
    """Layer -> (N, T+1): ||f_t - f_{t-1}|| / ||f_0|| per sample (0 at t = 0)."""
    out = {}
    for name, states in _changing_states(trace).items():
        scale = _flat(states[0]).norm(dim=1).clamp_min(1e-12)
        per_iteration = [torch.zeros_like(scale)] + [
            _flat(states[t] - states[t - 1]).norm(dim=1) / scale for t in range(1, len(states))]
        out[name] = torch.stack(per_iteration, 1)
    return out


def correlation_distance(a: Tensor, b: Tensor) -> Tensor:
    """1 - Pearson r per sample between (N, ...) tensors a and b: (N,), in [0, 2] (a constant
    sample has r = 0, as in :func:`neurocnnf.analysis.rsa.unit_rows`). Float64 torch on the
    tensors' device: 10x faster than through numpy (single-threaded, a host copy)."""
    r = (_unit_rows(_flat(a).double()) * _unit_rows(_flat(b).double())).sum(1)
    return (1.0 - r).float()


def _unit_rows(x: Tensor) -> Tensor:
    """:func:`neurocnnf.analysis.rsa.unit_rows` on a (k, m) tensor, without leaving torch."""
    centred = x - x.mean(1, keepdim=True)
    norms = centred.norm(dim=1, keepdim=True)
    return torch.where(norms > 0, centred / norms, 0.0)


def noise_distances(noisy: Trace, clean: Trace) -> dict[str, Tensor]:
    """Layer -> (N, T+1): correlation distance between noisy and clean states per iteration."""
    clean_states = _changing_states(clean)
    return {name: torch.stack([correlation_distance(s, c) for s, c in
                               zip(states, clean_states[name], strict=True)], 1)
            for name, states in _changing_states(noisy).items()}


class _Sums:
    """Running per-(key, iteration) sums of per-image values, for means and standard errors."""

    def __init__(self) -> None:
        self.total = defaultdict(float)
        self.squares = defaultdict(float)
        self.count = defaultdict(int)

    def add(self, key: tuple, values: Tensor) -> None:
        """values: (N, iterations), NaN-free."""
        values = values.double().cpu()
        for t in range(values.shape[1]):
            column = values[:, t]
            self.total[key + (t,)] += float(column.sum())
            self.squares[key + (t,)] += float(column.pow(2).sum())
            self.count[key + (t,)] += column.numel()

    def frame(self, names: Sequence[str]) -> pd.DataFrame:
        rows = []
        for key, total in self.total.items():
            n = self.count[key]
            mean = total / n
            var = max(self.squares[key] / n - mean ** 2, 0.0) * n / max(n - 1, 1)
            rows.append((*key, mean, float(np.sqrt(var / n)), n))
        return pd.DataFrame(rows, columns=[*names, "iteration", "value", "sem", "n"])


@torch.no_grad()
def compare(
    models: dict[str, nn.Module],
    images: Mapping[float, Tensor],
    labels: Tensor,
    iterations: int = 5,
    modes: Sequence[str] = ("intact", "zero", "shuffle"),
    batch_size: int = 250,
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """Run every model x feedback mode x noise level; return tidy tables (mean, sem, n).

    images: noise level -> (N, C, H, W) float in [0, 1], the same N images at every level
    (rendered from one stimulus set, e.g. ``perturb(stimuli, "noise", levels)``), level 0 the
    clean images, which every noise level is compared with; labels: (N,) int. A model whose
    ``iterations`` is 0 (a plain-CNN twin) runs only at t = 0, with intact feedback: the
    feedforward baseline. Tables: 'accuracy', 'prediction_error' (with 'relative', the value
    over its t = 0 value), 'change', 'noise_distance'; keys model, feedback, noise[, layer],
    iteration.
    """
    if 0.0 not in images:
        raise ValueError(f"compare needs the clean images (noise level 0) as the reference; "
                         f"got levels {sorted(images)}")
    shapes = {float(sigma): tuple(x.shape) for sigma, x in images.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"every noise level needs the same images: shapes {shapes}")
    n = images[0.0].shape[0]
    if n != labels.shape[0]:
        raise ValueError(f"{n} images but {labels.shape[0]} labels")
    if not models:
        raise ValueError("compare needs at least one model")
    sums = {name: _Sums() for name in ("accuracy", "prediction_error", "change",
                                       "noise_distance")}
    runs = [(name, mode) for name, model in models.items()
            for mode in (modes if model.iterations else ("intact",))]
    bar = tqdm(runs, desc="predictive-coding comparison", disable=not progress)
    for name, mode in bar:
        model = models[name]
        passes = compared_iterations(model, iterations)
        device = next(model.parameters()).device
        for start in range(0, n, batch_size):
            batch = slice(start, start + batch_size)
            y = labels[batch].to(device)
            reference = model(images[0.0][batch].to(device), iterations=passes, layers=None,
                              feedback=mode)
            for sigma, x in images.items():  # the clean trace serves every noise level
                trace = reference if sigma == 0 else model(x[batch].to(device),
                                                           iterations=passes, layers=None,
                                                           feedback=mode)
                key = (name, mode, float(sigma))
                correct = torch.stack([(z.argmax(1) == y).float() for z in trace.logits], 1)
                sums["accuracy"].add(key, correct)
                for layer, values in prediction_errors(trace).items():
                    sums["prediction_error"].add(key + (layer,), values)
                for layer, values in representational_change(trace).items():
                    sums["change"].add(key + (layer,), values)
                for layer, values in noise_distances(trace, reference).items():
                    sums["noise_distance"].add(key + (layer,), values)
    keys = ["model", "feedback", "noise"]
    tables = {"accuracy": sums["accuracy"].frame(keys)}
    for table in ("prediction_error", "change", "noise_distance"):
        tables[table] = sums[table].frame(keys + ["layer"])
    errors = tables["prediction_error"]
    if len(errors):
        at_zero = errors[errors["iteration"] == 0].set_index(keys + ["layer"])["value"]
        base = errors.set_index(keys + ["layer"]).index.map(at_zero)
        errors["relative"] = errors["value"].to_numpy() / np.asarray(base, dtype=float)
    return tables


def summary(tables: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """Headline numbers per model (intact feedback): accuracy at t = 0 and at the last
    iteration per noise level, the ablations' last-iteration accuracy, and the last
    iteration's relative prediction error at layer k."""
    acc = tables["accuracy"]
    out: dict[str, dict] = {}
    for (model, mode, sigma), rows in acc.groupby(["model", "feedback", "noise"]):
        rows = rows.sort_values("iteration")
        entry = out.setdefault(model, {}).setdefault(f"noise={sigma:g}", {})
        if mode == "intact":
            entry["acc_t0"] = round(float(rows["value"].iloc[0]), 4)
        entry[f"acc_last_{mode}"] = round(float(rows["value"].iloc[-1]), 4)
    errors = tables["prediction_error"]
    k = errors[(errors["layer"] == LAYER_K) & (errors["feedback"] == "intact")
               & (errors["noise"] == 0)]
    for model, rows in k.groupby("model"):
        out[model]["relative_prediction_error_last"] = round(
            float(rows.sort_values("iteration")["relative"].iloc[-1]), 4)
    return out
