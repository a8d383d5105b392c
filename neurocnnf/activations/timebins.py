"""Mapping CNN-F iterations to time bins (ms), and time bins back to iterations.

Default (CORnet-like): iteration 0 is the feedforward sweep, answering from 70 ms; each
feedback iteration adds one 40 ms bin, so a model with T = 4 spans Kar et al. (2019)'s
70-250 ms window (iteration t covers [70 + 40 t, 110 + 40 t) ms). A requested bin is answered
by the iteration whose start is nearest to the bin's start, as Brain-Score's CORnet-S does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimeBins:
    """Iteration t covers [start_ms + t * step_ms, start_ms + (t + 1) * step_ms)."""

    start_ms: float = 70.0
    step_ms: float = 40.0

    def __post_init__(self) -> None:
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
