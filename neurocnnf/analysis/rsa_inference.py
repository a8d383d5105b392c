"""Inference on model-to-brain RSA: the dual bootstrap over subjects and stimuli, noise
ceilings, and pairwise model tests, as rsatoolbox's ``eval_dual_bootstrap`` (fixed models,
no cross-validation) and ``Result.test_pairwise`` with its FDR rule define them.

Each bootstrap sample draws subjects and stimuli with replacement and evaluates every model
three times (rsatoolbox's order): on the sample of both, of subjects only, of stimuli only.
Pairs of a stimulus with its own copy are dropped; copies of a subject count as separate
RDMs in a model's mean but as one subject in the leave-one-subject-out noise ceiling
(rsatoolbox groups RDMs by their original index). The variance of a model's evaluation (and
of a difference of two) combines the three bootstrap covariances with rsatoolbox's small-sample
formula (``_dual_bootstrap`` in ``rsatoolbox.util.inference_util``); the pairwise t-tests use
it with min(subjects, stimuli) - 1 degrees of freedom. Vectorised: one ranking per sample,
whatever the number of models. tests/test_rsa_parity.py checks the numbers against rsatoolbox.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from neurocnnf.analysis.rsa import check_method, pool, resampled_pairs, unit_rows, upper


def similarity_matrix(models: np.ndarray, targets: np.ndarray, method: str = "spearman"
                      ) -> np.ndarray:
    """(k, m) x (s, m) dissimilarity vectors -> (k, s) similarities by ``method``."""
    check_method(method)
    if method == "tau-a":
        from neurocnnf.analysis.rsa import kendall_tau_a

        return np.array([[kendall_tau_a(a, b) for b in targets] for a in models])
    if method == "spearman":
        models, targets = stats.rankdata(models, axis=1), stats.rankdata(targets, axis=1)
    return unit_rows(np.asarray(models, float)) @ unit_rows(np.asarray(targets, float)).T


def vectors(rdms: np.ndarray) -> np.ndarray:
    """(k, n, n) RDMs -> (k, n(n-1)/2) upper triangles."""
    rdms = np.asarray(rdms, dtype=np.float64)
    return np.stack([upper(r) for r in rdms])


def subject_scores(model_rdms: np.ndarray, subject_rdms: np.ndarray,
                   method: str = "spearman") -> np.ndarray:
    """(k, n, n) models x (s, n, n) subjects -> (k, s) similarity of each model with each
    subject's RDM (their mean over subjects is what the noise ceiling bounds)."""
    return similarity_matrix(vectors(model_rdms), vectors(subject_rdms), method)


def noise_ceiling_from(subject_vectors: np.ndarray, groups: np.ndarray, method: str,
                       per_row: np.ndarray | None = None) -> tuple[float, float]:
    """(lower, upper) ceiling of (r, m) subject vectors; rows with the same group id are
    copies of one subject (left out together; each group counts once). ``per_row``: the rows'
    average ranks ('spearman') or z-scores ('corr') when already computed."""
    if method == "tau-a":
        per_group = [_ceiling_terms(subject_vectors, groups == g, method)
                     for g in np.unique(groups)]
        return tuple(float(x) for x in np.mean(per_group, 0))
    if per_row is None:  # pool as rsa.pool does, each row's ranks (or z-scores) once
        per_row = (stats.rankdata(subject_vectors, axis=1) if method == "spearman"
                   else stats.zscore(subject_vectors, axis=1))
    unique = np.unique(groups)
    if len(unique) < 2:  # one subject drawn: nothing to leave one out from
        return float("nan"), float("nan")
    pooled = np.stack([per_row[groups != g].mean(0) for g in unique] + [per_row.mean(0)])
    if method == "spearman":
        pooled = stats.rankdata(pooled, axis=1)
    sims = unit_rows(pooled) @ unit_rows(per_row).T  # (groups + 1, r)
    lower = [sims[k, groups == g].mean() for k, g in enumerate(unique)]
    upper_ = [sims[-1, groups == g].mean() for g in unique]
    return float(np.mean(lower)), float(np.mean(upper_))


def _ceiling_terms(subject_vectors: np.ndarray, inside: np.ndarray, method: str
                   ) -> tuple[float, float]:
    test = subject_vectors[inside]
    others = pool(subject_vectors[~inside], method)
    everyone = pool(subject_vectors, method)
    return (similarity_matrix(others[None], test, method).mean(),
            similarity_matrix(everyone[None], test, method).mean())


@dataclass
class DualBootstrap:
    """The dual bootstrap of k models against s subjects' RDMs of n stimuli.

    evaluations: (N, k, 3) mean similarity over the sample's subject RDMs per bootstrap sample
    and kind (0: subjects and stimuli resampled, 1: subjects only, 2: stimuli only); NaN rows
    for samples with fewer than 3 distinct stimuli. noise_ceiling: (N, 2, 3) (lower, upper).
    variances: (3, k + 2, k + 2) covariances of [models, lower, upper] per kind.
    """

    evaluations: np.ndarray
    noise_ceiling: np.ndarray
    variances: np.ndarray
    n_subjects: int
    n_stimuli: int

    @property
    def dof(self) -> int:
        return min(self.n_subjects, self.n_stimuli) - 1

    def mean(self) -> np.ndarray:
        """(k,) the mean evaluation over samples and kinds (what rsatoolbox's tests use)."""
        return np.nanmean(np.nanmean(self.evaluations, 0), -1)

    def model_variance(self) -> np.ndarray:
        """(k,) variance of each model's evaluation (rsatoolbox's ``Result.model_var``)."""
        return _combine(np.einsum("ijj->ij", self.variances)[:, :-2], self.n_subjects,
                        self.n_stimuli)

    def difference_variance(self, pairs: np.ndarray) -> np.ndarray:
        """(p,) variance of evaluation[a] - evaluation[b] for each pair (a, b) of ``pairs``."""
        pairs = np.asarray(pairs).reshape(-1, 2)
        cov = self.variances[:, :-2, :-2]
        a, b = pairs[:, 0], pairs[:, 1]
        per_kind = cov[:, a, a] + cov[:, b, b] - 2 * cov[:, a, b]
        return _combine(per_kind, self.n_subjects, self.n_stimuli)

    def sem(self) -> np.ndarray:
        """(k,) standard error of each model's evaluation."""
        return np.sqrt(np.maximum(self.model_variance(), 0))

    def percentile_ci(self, level: float = 0.95) -> np.ndarray:
        """(k, 2) percentile interval of the evaluations resampled over subjects and stimuli
        together (kind 0)."""
        tail = (1 - level) / 2
        return np.nanquantile(self.evaluations[:, :, 0], [tail, 1 - tail], axis=0).T

    def pair_tests(self, pairs: np.ndarray) -> np.ndarray:
        """(p,) two-sided t-test p of evaluation[a] = evaluation[b] per pair (a, b), with the
        dual-bootstrap variance of the difference (rsatoolbox's ``t_tests``)."""
        pairs = np.asarray(pairs).reshape(-1, 2)
        means = self.mean()
        diffs = means[pairs[:, 0]] - means[pairs[:, 1]]
        t = diffs / np.sqrt(np.maximum(self.difference_variance(pairs), np.finfo(float).eps))
        return 2 * (1 - stats.t.cdf(np.abs(t), self.dof))


def _combine(variances: np.ndarray, n_rdm: int, n_pattern: int) -> np.ndarray:
    """rsatoolbox's small-sample dual-bootstrap variance from the (3, ...) per-kind ones."""
    both, rdm, pattern = variances
    a, b = n_rdm / (n_rdm - 1), n_pattern / (n_pattern - 1)
    combined = a * rdm + b * pattern - a * b * (both - rdm - pattern)
    return np.minimum(np.maximum(np.maximum(combined, a * rdm), b * pattern), both)


def draw_samples(n_subjects: int, n_stimuli: int, n_boot: int, seed: int = 0
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_boot`` (subject indices, stimulus indices) drawn with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, n_subjects, n_subjects), rng.integers(0, n_stimuli, n_stimuli))
            for _ in range(n_boot)]


def dense_keys(values: np.ndarray) -> np.ndarray:
    """(k, m) -> int (k, m): each row's values replaced by their dense rank (0, 1, ...), an
    order- and tie-preserving code that ``average_ranks`` ranks fast on any subset."""
    return (stats.rankdata(values, method="dense", axis=1) - 1).astype(np.int64)


def average_ranks(keys: np.ndarray) -> np.ndarray:
    """int (k, m) dense keys -> float (k, m) average ranks per row (1-based, ties averaged,
    as ``scipy.stats.rankdata``), in O(k m) by counting."""
    k, _ = keys.shape
    size = int(keys.max()) + 1 if keys.size else 1
    flat = keys + size * np.arange(k)[:, None]
    counts = np.bincount(flat.ravel(), minlength=k * size).reshape(k, size)
    before = np.cumsum(counts, 1) - counts
    average = before + (counts + 1) / 2.0
    return np.take_along_axis(average, keys, 1)


def _per_row(prepared: np.ndarray, method: str) -> np.ndarray:
    """Prepared vectors (dense keys for 'spearman', values otherwise) -> what similarities
    and pools are computed from: average ranks ('spearman'), z-scores ('corr')."""
    if method == "spearman":
        return average_ranks(prepared)
    return stats.zscore(prepared, axis=1)


def dual_bootstrap(model_rdms: np.ndarray, subject_rdms: np.ndarray, method: str = "spearman",
                   n_boot: int = 1000, seed: int = 0,
                   samples: list[tuple[np.ndarray, np.ndarray]] | None = None
                   ) -> DualBootstrap:
    """Dual bootstrap of (k, n, n) model RDMs against (s, n, n) subject RDMs (s >= 2), by
    'spearman' or 'corr' (tau-a is not vectorised: too slow for a bootstrap of many models).

    ``samples``: the (subject, stimulus) index draws to use (default: ``draw_samples``)."""
    if check_method(method) == "tau-a":
        raise ValueError("the dual bootstrap compares by 'spearman' or 'corr', not 'tau-a'")
    subject_rdms = np.asarray(subject_rdms, float)
    s, n = len(subject_rdms), subject_rdms.shape[1]
    if s < 2:
        raise ValueError("the dual bootstrap needs at least two subjects' RDMs")
    samples = samples if samples is not None else draw_samples(s, n, n_boot, seed)
    model_vectors, subject_vectors = vectors(model_rdms), vectors(subject_rdms)
    prepared_models, prepared_subjects = (
        (dense_keys(model_vectors), dense_keys(subject_vectors)) if method == "spearman"
        else (model_vectors, subject_vectors))
    position = np.zeros((n, n), dtype=np.int64)  # (i, j) -> index in the upper triangle
    position[np.triu_indices(n, 1)] = np.arange(n * (n - 1) // 2)
    position = position + position.T
    k = len(model_vectors)
    evaluations = np.full((len(samples), k, 3), np.nan)
    ceiling = np.full((len(samples), 2, 3), np.nan)
    every = np.arange(s)
    subject_rows = _per_row(prepared_subjects, method)
    full = unit_rows(_per_row(prepared_models, method)) @ unit_rows(subject_rows).T  # (k, s)
    for b, (who, which) in enumerate(samples):
        if len(np.unique(which)) < 3:
            continue
        entries = position[resampled_pairs(np.asarray(which))]
        rows_b = _per_row(prepared_subjects[:, entries], method)
        scores = unit_rows(_per_row(prepared_models[:, entries], method)) @ unit_rows(rows_b).T
        evaluations[b, :, 0] = scores[:, who].mean(1)
        evaluations[b, :, 1] = full[:, who].mean(1)
        evaluations[b, :, 2] = scores.mean(1)
        for kind, (rows, groups) in enumerate([(rows_b[who], who), (subject_rows[who], who),
                                               (rows_b, every)]):
            ceiling[b, :, kind] = noise_ceiling_from(None, groups, method, rows)
    ok = ~np.isnan(evaluations[:, 0, 0])
    matrix = np.concatenate([evaluations[ok], ceiling[ok]], 1)  # (N_ok, k + 2, 3)
    matrix = matrix - matrix.mean(0, keepdims=True)
    variances = np.einsum("ijk,ilk->kjl", matrix, matrix) / (matrix.shape[0] - 1)
    return DualBootstrap(evaluations, ceiling, variances, s, n)


def fdr_significant(p_values: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """Benjamini-Hochberg as rsatoolbox's model plot applies it: p < the largest criterion
    alpha * rank / m that some sorted p is below (strictly); bool array like ``p_values``."""
    p = np.asarray(p_values, float)
    ordered = np.sort(p.ravel())
    criterion = alpha * (np.arange(len(ordered)) + 1) / len(ordered)
    passed = np.flatnonzero(ordered < criterion)
    cut = criterion[passed.max()] if len(passed) else 0.0
    return p < cut
