"""Linear CKA (Kornblith et al. 2019) with the debiased HSIC estimator (Song et al. 2012)."""

from __future__ import annotations

import numpy as np


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
