"""Human uncertainty (CIFAR-10H) against a model's iterations: is the model's predictive
distribution more human-like with feedback, and do the images people disagree about take the
model longer to settle?

Per image: the entropy of ~50 people's labels (nats) against the model's settling iteration
and its adaptive-halting iteration (Spearman, bootstrap over images). Per iteration: the
cross-entropy of the model's distribution to the human one, -sum_c h_c log p_c (nats,
lower is more human-like), and top-1 agreement with the human plurality on disputed images
(fewer than ``DISPUTED_SHARE`` of the people chose the plurality class). Every interval
resamples images (with replacement); differences between models or iterations are paired
(the same resampled images).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DISPUTED_SHARE = 0.9  # an image is disputed when < 90 % of the annotators chose its plurality


def cross_entropy(human: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """human (n, C), model probabilities (n, T+1, C) -> (n, T+1) cross-entropy, nats."""
    return -(human[:, None] * np.log(np.clip(probabilities, 1e-12, 1))).sum(-1)


def disputed(human: np.ndarray, share: float = DISPUTED_SHARE) -> np.ndarray:
    """(n,) bool: fewer than ``share`` of the people chose the plurality class."""
    return human.max(1) < share


def image_bootstrap(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """(n, m) per-image values -> (n_boot, m) column means over images resampled with
    replacement (one resample for all columns: differences of columns are paired). NaN
    entries (an image a column does not cover) are left out of that column's mean."""
    rng = np.random.default_rng(seed)
    n = len(values)
    out = np.empty((n_boot, values.shape[1]))
    for b in range(n_boot):
        out[b] = np.nanmean(values[rng.integers(0, n, n)], 0)
    return out


def summarise(name: str, values: np.ndarray, boots: np.ndarray, level: float = 0.95
              ) -> dict:
    """Mean, percentile interval and two-sided bootstrap p (against 0) of one column."""
    tail = (1 - level) / 2
    finite = boots[np.isfinite(boots)]
    p = min(1.0, 2 * min((finite <= 0).mean(), (finite >= 0).mean())) if finite.size else np.nan
    return {"quantity": name, "value": float(np.nanmean(values)),
            "ci_low": float(np.quantile(finite, tail)), "ci_high": float(np.quantile(finite,
                                                                                     1 - tail)),
            "p": float(p)}


def per_iteration(models: dict[str, np.ndarray], human: np.ndarray, n_boot: int = 1000,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cross-entropy to the human distribution and top-1 agreement with the human plurality
    on disputed images, per model and iteration, with image-bootstrap intervals.

    models: name -> probabilities (n, T+1, C) on the images of ``human`` (n, C), the first
    the model of interest, the others baselines (e.g. its twin). Returns (per-iteration table,
    comparisons: the first model at each iteration minus its iteration 0 and minus each
    baseline's last iteration, paired over images)."""
    dispute = disputed(human)
    plurality = human.argmax(1)
    columns, names = [], []
    for model, probabilities in models.items():
        ce = cross_entropy(human, probabilities)
        agree = (probabilities.argmax(-1) == plurality[:, None]).astype(float)
        agree[~dispute] = np.nan
        for t in range(probabilities.shape[1]):
            columns += [ce[:, t], agree[:, t]]
            names += [(model, t, "cross_entropy"), (model, t, "agreement_disputed")]
    values = np.stack(columns, 1)
    boots = image_bootstrap(values, n_boot, seed)
    rows = []
    for j, (model, t, quantity) in enumerate(names):
        entry = summarise(quantity, values[:, j], boots[:, j])
        rows.append({"model": model, "iteration": t, **entry})
    table = pd.DataFrame(rows).drop(columns="p")
    position = {key: j for j, key in enumerate(names)}
    focus, *baselines = models
    last = {m: models[m].shape[1] - 1 for m in models}
    comparisons = []
    for quantity in ("cross_entropy", "agreement_disputed"):
        for t in range(last[focus] + 1):
            a = position[(focus, t, quantity)]
            against = ([(f"{focus} t=0", position[(focus, 0, quantity)])] if t else []) + [
                (f"{b} t={last[b]}", position[(b, last[b], quantity)]) for b in baselines]
            for label, b in against:
                entry = summarise(quantity, values[:, a] - values[:, b],
                                  boots[:, a] - boots[:, b])
                comparisons.append({"a": f"{focus} t={t}", "b": label, **entry})
    return table, pd.DataFrame(comparisons)
