"""Representational similarity analysis (RSA).

RDMs are (n, n) correlation distances (1 - Pearson r between stimulus patterns). Two RDMs are
compared on their upper triangles by Spearman's rho or Kendall's tau-a (the rsatoolbox
convention for comparing with categorical or tied model RDMs). Confidence intervals come from
a bootstrap over stimuli; the noise ceiling from individual subjects' RDMs.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def rdm(patterns: np.ndarray) -> np.ndarray:
    """(n, d) patterns -> (n, n) RDM of 1 - Pearson correlation."""
    patterns = np.asarray(patterns, dtype=np.float64)
    if patterns.ndim != 2 or patterns.shape[0] < 3:
        raise ValueError(f"rdm needs patterns of shape (n >= 3, d), got {patterns.shape}")
    centred = patterns - patterns.mean(1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    unit = np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0)
    return 1.0 - unit @ unit.T


def upper(matrix: np.ndarray) -> np.ndarray:
    """The upper triangle (without the diagonal) as a vector."""
    return matrix[np.triu_indices(matrix.shape[0], 1)]


def kendall_tau_a(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a: (concordant - discordant) pairs over all n(n-1)/2 pairs (ties count 0)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = len(a)
    total = 0.0
    for start in range(0, n, 512):  # chunks of rows keep memory at 512 x n
        da = np.sign(a[start:start + 512, None] - a[None, :])
        db = np.sign(b[start:start + 512, None] - b[None, :])
        total += float((da * db).sum())
    return total / (n * (n - 1))


def compare(rdm_a: np.ndarray, rdm_b: np.ndarray, method: str = "spearman") -> float:
    """Similarity of two RDMs: 'spearman' (rho) or 'kendall' (tau-a) on upper triangles."""
    a, b = upper(rdm_a), upper(rdm_b)
    if method == "spearman":
        return float(stats.spearmanr(a, b)[0])
    if method == "kendall":
        return kendall_tau_a(a, b)
    raise ValueError(f"unknown RDM comparison {method!r}: use 'spearman' or 'kendall'")


def bootstrap_ci(rdm_a: np.ndarray, rdm_b: np.ndarray, method: str = "spearman",
                 n_boot: int = 200, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of ``compare`` over stimuli resampled with replacement.

    Pairs of a stimulus with its own copy are left out of each resampled comparison.
    """
    rng = np.random.default_rng(seed)
    n = rdm_a.shape[0]
    values = []
    for _ in range(n_boot):
        pick = rng.choice(n, n, replace=True)
        i, j = np.triu_indices(n, 1)
        keep = pick[i] != pick[j]
        a, b = rdm_a[pick[i], pick[j]][keep], rdm_b[pick[i], pick[j]][keep]
        values.append(stats.spearmanr(a, b)[0] if method == "spearman" else kendall_tau_a(a, b))
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def noise_ceiling(subject_rdms: list[np.ndarray], method: str = "spearman") -> tuple[float, float]:
    """(lower, upper) bound: each subject against the mean RDM of the others / of all subjects."""
    if len(subject_rdms) < 2:
        raise ValueError("a noise ceiling needs at least two subjects")
    stack = np.stack(subject_rdms)
    mean_all = stack.mean(0)
    lower = [compare(stack[s], np.delete(stack, s, 0).mean(0), method) for s in range(len(stack))]
    upper_ = [compare(stack[s], mean_all, method) for s in range(len(stack))]
    return float(np.mean(lower)), float(np.mean(upper_))
