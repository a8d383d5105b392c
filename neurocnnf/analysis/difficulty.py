"""Recurrence versus difficulty: when does each image's inference settle, and does it take
longer for harder images? All functions read per-iteration arrays (n, T+1, ...) of an
activation dataset (logits, probabilities) and return per-image iterations or tidy tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def first_true(flags: np.ndarray) -> np.ndarray:
    """(n, T+1) bool -> index of the first True per row, T+1 where there is none."""
    flags = np.asarray(flags, bool)
    return np.where(flags.any(1), flags.argmax(1), flags.shape[1])


def settling_iteration(logits: np.ndarray, tolerance: float = 0.05) -> np.ndarray:
    """First iteration t after which every relative logit change ||z_(s+1) - z_s|| / ||z_s||
    (s >= t) stays below ``tolerance``: where inference becomes self-consistent. 0 if the
    logits never move; T when they still move at the last step. logits: (n, T+1, classes)."""
    change = np.linalg.norm(np.diff(logits, axis=1), axis=2) / np.maximum(
        np.linalg.norm(logits[:, :-1], axis=2), 1e-12)  # (n, T)
    settled = change < tolerance
    stays = np.flip(np.logical_and.accumulate(np.flip(settled, 1), axis=1), 1)  # from t on
    return first_true(stays)


def first_correct_iteration(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """First iteration whose prediction is the label (T+1 if none). logits (n, T+1, classes)."""
    return first_true(logits.argmax(2) == np.asarray(labels)[:, None])


def entropy_halting(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """First iteration whose predictive entropy (nats) is below ``threshold``; the last
    iteration when none is (the model must answer then)."""
    p = np.clip(probabilities, 1e-12, 1)
    entropy = -(p * np.log(p)).sum(2)
    halt = first_true(entropy < threshold)
    return np.minimum(halt, probabilities.shape[1] - 1)


def speed_accuracy(probabilities: np.ndarray, labels: np.ndarray,
                   thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """Accuracy at the entropy-halting iteration vs the mean number of iterations used."""
    thresholds = np.linspace(0.05, 2.3, 12) if thresholds is None else thresholds
    rows = []
    for threshold in thresholds:
        halt = entropy_halting(probabilities, threshold)
        answer = probabilities[np.arange(len(halt)), halt].argmax(1)
        rows.append({"threshold": float(threshold), "mean_iterations": float(halt.mean()),
                     "accuracy": float((answer == labels).mean())})
    return pd.DataFrame(rows)


def spearman_with_ci(x: np.ndarray, y: np.ndarray, n_boot: int = 500, seed: int = 0,
                     level: float = 0.95, groups: np.ndarray | None = None
                     ) -> dict[str, float]:
    """Spearman rho of x and y with a percentile bootstrap CI (NaN when either is constant:
    the correlation is undefined). ``groups``: rows with the same value (one image shown at
    several levels or iterations) are resampled together, whole groups with replacement, so
    repeated measures of an image are not treated as independent; default: every row alone."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                "n": len(x), "n_groups": len(x) if groups is None else len(np.unique(groups))}
    rho = stats.spearmanr(x, y)[0]
    members = ([np.array([i]) for i in range(len(x))] if groups is None
               else [np.flatnonzero(groups == g) for g in np.unique(groups)])
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        pick = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        if np.ptp(x[pick]) > 0 and np.ptp(y[pick]) > 0:
            boots.append(stats.spearmanr(x[pick], y[pick])[0])
    tail = (1 - level) / 2
    return {"rho": float(rho), "ci_low": float(np.quantile(boots, tail)),
            "ci_high": float(np.quantile(boots, 1 - tail)), "n": len(x),
            "n_groups": len(members)}


def accuracy_gain_by_level(logits: np.ndarray, labels: np.ndarray, level: np.ndarray
                           ) -> pd.DataFrame:
    """Accuracy at iteration 0 ('first') and at the last iteration ('last') per level of
    difficulty (a perturbation level, or any grouping), and the gain (last - first), as
    fractions in [0, 1]. logits (n, T+1, classes); labels, level (n,)."""
    frame = pd.DataFrame({"level": np.asarray(level), "first": logits[:, 0].argmax(1) == labels,
                          "last": logits[:, -1].argmax(1) == labels})
    table = frame.groupby("level")[["first", "last"]].mean()
    table["gain"] = table["last"] - table["first"]
    return table.reset_index()
