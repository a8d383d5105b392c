"""Per-layer dimensionality reduction for large layers: PCA or a seeded random projection.

A reduction maps features (B, D) to (B, k) with ``(x - mean) @ components``; the same map is
used for every iteration, so trajectories stay comparable across iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class Projection:
    """mean: (D,); components: (D, k). ``method`` is 'pca' or 'random'."""

    method: str
    mean: Tensor
    components: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) @ self.components

    @property
    def size(self) -> int:
        return self.components.shape[1]


def random_projection(dim: int, k: int, seed: int = 0) -> Projection:
    """Gaussian projection D -> k scaled by 1/sqrt(k) (Johnson-Lindenstrauss), seeded."""
    generator = torch.Generator().manual_seed(seed)
    components = torch.randn(dim, k, generator=generator) / k**0.5
    return Projection("random", torch.zeros(dim), components)


def fit_pca(features: Tensor, k: int) -> Projection:
    """PCA on reference features (n, D): the top-k principal axes (k <= min(n, D))."""
    if features.dim() != 2:
        raise ValueError("PCA needs features of shape (n, D)")
    k = min(k, *features.shape)
    mean = features.mean(0)
    _, _, v = torch.linalg.svd(features - mean, full_matrices=False)
    return Projection("pca", mean, v[:k].T.contiguous())


def to_arrays(projections: dict[str, Projection]) -> dict[str, np.ndarray]:
    """Projections by layer as arrays '<layer>.mean' (D,), '<layer>.components' (D, k)."""
    arrays = {}
    for layer, projection in projections.items():
        arrays[f"{layer}.mean"] = projection.mean.numpy()
        arrays[f"{layer}.components"] = projection.components.numpy()
    return arrays


def from_arrays(arrays: dict[str, np.ndarray], method: str) -> dict[str, Projection]:
    """The inverse of ``to_arrays``."""
    layers = [key.removesuffix(".mean") for key in arrays if key.endswith(".mean")]
    return {layer: Projection(method, torch.from_numpy(arrays[f"{layer}.mean"]),
                              torch.from_numpy(arrays[f"{layer}.components"]))
            for layer in layers}
