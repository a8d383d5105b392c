"""Representational similarity analysis (RSA), with rsatoolbox's definitions.

RDMs are (n, n) correlation distances (1 - Pearson r between stimulus patterns). Two RDMs are
compared on their upper triangles (n(n-1)/2 entries) by one of ``METHODS``, named as in
rsatoolbox (``rsatoolbox.rdm.compare``):

- 'spearman': Spearman's rho (Pearson r of the average ranks);
- 'tau-a': Kendall's tau-a, (concordant - discordant) / (m(m-1)/2) over the m entries, ties
  counting 0 (rsatoolbox's choice for model RDMs with ties; its 'kendall' is tau-b);
- 'corr': Pearson r.

The noise ceiling pools subject RDMs as rsatoolbox's ``pool_rdm`` does before comparing:
average ranks for 'spearman' and 'tau-a', average z-scored dissimilarities for 'corr'
(``rsatoolbox.inference.boot_noise_ceiling``). The bootstrap resamples stimuli with replacement
and drops the pairs of a stimulus with its own copy (``bootstrap_sample_pattern`` followed by
``RDMs.subsample_pattern``). tests/test_rsa_parity.py checks all of these against rsatoolbox.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

METHODS = ("spearman", "tau-a", "corr")


def check_method(method: str) -> str:
    """The method name, or a ValueError naming the valid ones."""
    if method == "kendall":
        raise ValueError("'kendall' is ambiguous (rsatoolbox's 'kendall' is tau-b); this "
                         "package computes Kendall's tau-a: use method 'tau-a'")
    if method not in METHODS:
        raise ValueError(f"unknown RDM comparison {method!r}: use one of {', '.join(METHODS)}")
    return method


def unit_rows(values: np.ndarray) -> np.ndarray:
    """(k, m) -> rows centred and scaled to unit norm; constant rows become 0."""
    centred = values - values.mean(-1, keepdims=True)
    norms = np.linalg.norm(centred, axis=-1, keepdims=True)
    return np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two vectors of the same length (0 when either is constant)."""
    return float(unit_rows(np.asarray(a, float)) @ unit_rows(np.asarray(b, float)))


def rdm(patterns: np.ndarray) -> np.ndarray:
    """(n, d) patterns -> (n, n) RDM of 1 - Pearson correlation."""
    patterns = np.asarray(patterns, dtype=np.float64)
    if patterns.ndim != 2 or patterns.shape[0] < 3:
        raise ValueError(f"rdm needs patterns of shape (n >= 3, d), got {patterns.shape}")
    unit = unit_rows(patterns)
    return 1.0 - unit @ unit.T


def upper(matrix: np.ndarray) -> np.ndarray:
    """The upper triangle (without the diagonal) as a vector."""
    return matrix[np.triu_indices(matrix.shape[0], 1)]


def _tied_pairs(values: np.ndarray) -> int:
    """Number of pairs with equal values."""
    _, counts = np.unique(values, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def kendall_tau_a(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a of two (m,) vectors in O(m log m): (concordant - discordant) / (m(m-1)/2).

    scipy's tau-b (merge sort) is (C - D) / sqrt((P - T_a)(P - T_b)) with P = m(m-1)/2 pairs
    and T_a, T_b the pairs tied in a, in b; tau-a rescales it by that denominator over P.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"tau-a needs two vectors of the same length >= 2, got "
                         f"{a.shape} and {b.shape}")
    pairs = len(a) * (len(a) - 1) // 2
    untied_a, untied_b = pairs - _tied_pairs(a), pairs - _tied_pairs(b)
    if untied_a == 0 or untied_b == 0:  # a constant vector: no pair is (dis)concordant
        return 0.0
    tau_b = stats.kendalltau(a, b).statistic
    return float(tau_b * np.sqrt(float(untied_a) * float(untied_b)) / pairs)


def compare_vectors(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> float:
    """Similarity of two dissimilarity vectors (m,) by ``method`` (see ``METHODS``)."""
    check_method(method)
    if method == "tau-a":
        return kendall_tau_a(a, b)
    if method == "spearman":
        a, b = stats.rankdata(a), stats.rankdata(b)
    return pearson(a, b)


def compare(rdm_a: np.ndarray, rdm_b: np.ndarray, method: str = "spearman") -> float:
    """Similarity of two (n, n) RDMs on their upper triangles by ``method``."""
    if rdm_a.shape != rdm_b.shape:
        raise ValueError(f"RDMs of different shapes: {rdm_a.shape} and {rdm_b.shape}")
    return compare_vectors(upper(rdm_a), upper(rdm_b), method)


def pool(vectors: np.ndarray, method: str = "spearman") -> np.ndarray:
    """(s, m) dissimilarity vectors -> (m,) the pooled vector that ``method`` is compared with:
    mean rank ('spearman', 'tau-a') or mean z-score ('corr'), as rsatoolbox's ``pool_rdm``."""
    check_method(method)
    vectors = np.asarray(vectors, float)
    if method == "corr":
        return stats.zscore(vectors, axis=1).mean(0)
    return stats.rankdata(vectors, axis=1).mean(0)


def noise_ceiling(subject_rdms: Sequence[np.ndarray], method: str = "spearman"
                  ) -> tuple[float, float]:
    """(lower, upper) bound on the mean similarity of a model with the subjects' RDMs.

    lower: each subject against the pooled RDM of the others; upper: against the pooled RDM of
    all subjects; both averaged over subjects (rsatoolbox's ``boot_noise_ceiling``).
    """
    if len(subject_rdms) < 2:
        raise ValueError("a noise ceiling needs at least two subjects")
    vectors = np.stack([upper(np.asarray(r, float)) for r in subject_rdms])
    pooled_all = pool(vectors, method)
    lower = [compare_vectors(vectors[s], pool(np.delete(vectors, s, 0), method), method)
             for s in range(len(vectors))]
    upper_ = [compare_vectors(vectors[s], pooled_all, method) for s in range(len(vectors))]
    return float(np.mean(lower)), float(np.mean(upper_))


def evaluate(model_rdm: np.ndarray, target_rdms: Sequence[np.ndarray],
             method: str = "spearman") -> float:
    """Mean similarity of a model RDM with each target RDM (e.g. one per subject): the number
    that ``noise_ceiling`` of the same targets bounds."""
    return float(np.mean([compare(model_rdm, target, method) for target in target_rdms]))


def resampled_pairs(pick: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus indices (i, j) of the RDM entries of a resample ``pick`` (n,) of stimuli: every
    pair of positions, less those where a stimulus meets its own copy."""
    i, j = np.triu_indices(len(pick), 1)
    keep = pick[i] != pick[j]
    return pick[i][keep], pick[j][keep]


def bootstrap(model_rdm: np.ndarray, target_rdms: Sequence[np.ndarray],
              method: str = "spearman", n_boot: int = 200, seed: int = 0) -> np.ndarray:
    """(n_boot,) ``evaluate`` of resamples of the stimuli (with replacement, seeded).

    Resamples with fewer than 3 distinct stimuli are NaN (rsatoolbox's rule).
    """
    check_method(method)
    rng = np.random.default_rng(seed)
    n = model_rdm.shape[0]
    values = np.full(n_boot, np.nan)
    for k in range(n_boot):
        pick = rng.integers(0, n, n)
        if len(np.unique(pick)) < 3:
            continue
        i, j = resampled_pairs(pick)
        values[k] = np.mean([compare_vectors(model_rdm[i, j], target[i, j], method)
                             for target in target_rdms])
    return values


def bootstrap_ci(model_rdm: np.ndarray, target_rdms: Sequence[np.ndarray],
                 method: str = "spearman", n_boot: int = 200, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of ``evaluate`` over ``bootstrap`` resamples of the stimuli."""
    values = bootstrap(model_rdm, target_rdms, method, n_boot, seed)
    tail = (1 - level) / 2
    return float(np.nanquantile(values, tail)), float(np.nanquantile(values, 1 - tail))
