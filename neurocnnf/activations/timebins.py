"""Mapping CNN-F iterations to time windows (ms), and requested time bins back to iterations.

Iteration t covers the window [start_ms + t * step_ms, start_ms + (t + 1) * step_ms) ms:
iteration 0 is the feedforward sweep, each feedback iteration one more window. The default
(70 ms + 40 ms per iteration) spans Kar et al. (2019)'s 70-250 ms with T = 4.

A requested bin [a, b) is answered in one of two modes:
  "overlap" (default): the responses of the iterations whose windows overlap [a, b), weighted
      by the length of the overlap (what a spike count over [a, b) would see). The first
      window reaches back to -inf and the last one on to +inf (before the sweep the model
      has nothing else to say; after the last iteration it has settled).
  "nearest": the one iteration whose start is nearest to a (as Brain-Score's CORnet-S does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MODES = ("overlap", "nearest")


@dataclass(frozen=True)
class TimeBins:
    """Iteration t covers [start_ms + t * step_ms, start_ms + (t + 1) * step_ms) ms."""

    start_ms: float = 70.0
    step_ms: float = 40.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.start_ms) and np.isfinite(self.step_ms)):
            raise ValueError(f"time bins need finite times (ms), got start {self.start_ms}, "
                             f"step {self.step_ms}")
        if self.step_ms <= 0:
            raise ValueError(f"step_ms must be > 0, got {self.step_ms}")

    def starts(self, iterations: int) -> np.ndarray:
        """Start (ms) of each of the T+1 iterations."""
        return self.start_ms + self.step_ms * np.arange(iterations + 1)

    def ends(self, iterations: int) -> np.ndarray:
        return self.starts(iterations) + self.step_ms

    def iteration_for(self, bin_starts: np.ndarray | list[float], iterations: int) -> np.ndarray:
        """For each requested bin start (ms), the iteration whose start is nearest."""
        starts = self.starts(iterations)
        requested = np.asarray(bin_starts, dtype=float)
        return np.abs(requested[:, None] - starts[None, :]).argmin(axis=1)

    def weights(self, bins: Sequence[Sequence[float]], iterations: int,
                mode: str = "overlap") -> np.ndarray:
        """(n_bins, T+1) weights of each iteration in each requested (start, end) bin (ms).

        Rows sum to 1. "overlap": overlap length of the bin with each iteration's window (the
        first window open to the left, the last to the right); a bin of zero length takes the
        iteration whose window holds its start. "nearest": one-hot on ``iteration_for``.
        """
        if mode not in MODES:
            raise ValueError(f"unknown time-bin mode {mode!r}; choose from {list(MODES)}")
        requested = np.asarray(bins, dtype=float).reshape(-1, 2)
        if (requested[:, 1] < requested[:, 0]).any():
            raise ValueError(f"a time bin ends before it starts: {requested.tolist()}")
        one_hot = np.eye(iterations + 1)
        if mode == "nearest":
            return one_hot[self.iteration_for(requested[:, 0], iterations)]
        lower = self.starts(iterations).astype(float)
        upper = self.ends(iterations).astype(float)
        lower[0], upper[-1] = -np.inf, np.inf
        overlap = np.clip(np.minimum(requested[:, 1:], upper) - np.maximum(requested[:, :1], lower),
                          0, None)
        total = overlap.sum(axis=1, keepdims=True)
        holding = one_hot[np.searchsorted(upper, requested[:, 0], side="right")]
        return np.where(total > 0, overlap / np.where(total > 0, total, 1), holding)
