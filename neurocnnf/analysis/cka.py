"""Linear CKA (Kornblith et al. 2019) with the debiased HSIC estimator (Song et al. 2012)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _unbiased_hsic(gram_x: np.ndarray, gram_y: np.ndarray) -> float:
    n = gram_x.shape[0]
    kx, ky = gram_x.copy(), gram_y.copy()
    np.fill_diagonal(kx, 0.0)
    np.fill_diagonal(ky, 0.0)
    ones = np.ones(n)
    term = (np.sum(kx * ky) + (ones @ kx @ ones) * (ones @ ky @ ones) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (ones @ kx @ ky @ ones))
    return term / (n * (n - 3))


def linear_cka(x: np.ndarray, y: np.ndarray, debiased: bool = True) -> float:
    """CKA between representations x (n, p) and y (n, q) of the same n stimuli.

    1 for representations equal up to rotation and isotropic scaling; ~0 for independent ones
    (the debiased estimator removes the positive bias of small n).
    """
    x = np.asarray(x, float) - np.mean(x, 0)
    y = np.asarray(y, float) - np.mean(y, 0)
    if x.shape[0] != y.shape[0] or x.shape[0] < 4:
        raise ValueError("CKA needs the same n >= 4 stimuli in both representations")
    gram_x, gram_y = x @ x.T, y @ y.T
    if debiased:
        xy = _unbiased_hsic(gram_x, gram_y)
        xx, yy = _unbiased_hsic(gram_x, gram_x), _unbiased_hsic(gram_y, gram_y)
    else:
        xy, xx, yy = np.sum(gram_x * gram_y), np.sum(gram_x**2), np.sum(gram_y**2)
    return float(xy / np.sqrt(xx * yy))


def iteration_cka(values: np.ndarray) -> np.ndarray:
    """(T+1, T+1) debiased linear CKA between the iterations of one layer's (n, T+1, ...)
    features of n stimuli (1 on the diagonal)."""
    values = np.asarray(values).reshape(*values.shape[:2], -1)
    passes = values.shape[1]
    matrix = np.ones((passes, passes))
    for i in range(passes):
        for j in range(i + 1, passes):
            matrix[i, j] = matrix[j, i] = linear_cka(values[:, i], values[:, j])
    return matrix


def iteration_cka_table(features: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Tidy CKA across iterations: one row per model x layer x (iteration_a, iteration_b),
    from model -> variable -> (n, T+1, ...) features; feedback variables (``*_feedback``)
    and models run with no iteration (T = 0) are left out."""
    rows = []
    for model, variables in features.items():
        for layer, values in variables.items():
            if layer.endswith("_feedback") or values.shape[1] < 2:
                continue
            matrix = iteration_cka(values)
            rows += [{"model": model, "layer": layer, "iteration_a": a, "iteration_b": b,
                      "cka": float(matrix[a, b])}
                     for a in range(len(matrix)) for b in range(len(matrix))]
    return pd.DataFrame(rows, columns=["model", "layer", "iteration_a", "iteration_b", "cka"])
