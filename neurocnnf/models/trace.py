"""The Trace: everything one CNN-F call computed, per iteration. All downstream code reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from torch import Tensor

Scoring = Literal["last", "avg", "first"]
SCORINGS: tuple[str, ...] = get_args(Scoring)


@dataclass
class Trace:
    """Per-iteration record of one inference call with T iterations.

    Iteration 0 is the plain feedforward pass. Iteration t >= 1 is feedback pass t-1 (generated
    from ``logits[t-1]``) followed by feedforward pass t.

    logits: T+1 tensors (N, classes).
    h: (N, *feature_shape) encoder output at layer k (the reconstruction target).
    h_hat: T+1 tensors, the body's input per iteration; h_hat[0] = h, eq. 6 afterwards.
    reconstruction: T tensors g_t(k) (the feedback arriving at layer k), t = 0..T-1.
    forward: tap name -> T+1 tensors f_t(l) (encoder taps repeat their one value).
    feedback: tap name -> T tensors g_t(l) (body taps only).
    mask_flips: latent layer -> T tensors (N,), per sample the fraction of its latent units
        that changed between consecutive feedforward passes (only when asked for).
    decoded: T+1 tensors (N, C, H, W), h_hat_t carried to pixel space through the transposed
        encoder, as the feedback would continue (only when asked for).
    halted_at: (N,) int64, with adaptive halting (``model(x, halt=tol)``): the iteration at
        which each image stopped (T if it never settled). Entries after it repeat the image's
        state at ``halted_at`` (mask flips are 0). None for a fixed-T call.

    From a compiled pass on the CPU the (N, C, H, W) maps may be channels_last (the layout its
    convolutions run in): the same values, read them with ``reshape``, not ``view``.
    """

    logits: list[Tensor]
    h: Tensor
    h_hat: list[Tensor]
    reconstruction: list[Tensor]
    forward: dict[str, list[Tensor]] = field(default_factory=dict)
    feedback: dict[str, list[Tensor]] = field(default_factory=dict)
    mask_flips: dict[str, list[Tensor]] = field(default_factory=dict)
    decoded: list[Tensor] = field(default_factory=list)
    halted_at: Tensor | None = None

    @property
    def iterations(self) -> int:
        """T, the number of feedback iterations after the first feedforward pass."""
        return len(self.logits) - 1

    @property
    def computed(self) -> Tensor:
        """(T+1, N) bool: True where iteration t of image n was computed, False where it
        repeats a halted image's last state (all True without halting)."""
        n = self.logits[0].shape[0]
        t = torch.arange(self.iterations + 1, device=self.logits[0].device)[:, None]
        if self.halted_at is None:
            return torch.ones(self.iterations + 1, n, dtype=torch.bool, device=t.device)
        return t <= self.halted_at[None, :]

    @property
    def first(self) -> Tensor:
        """Logits of the plain feedforward pass (iteration 0), (N, classes)."""
        return self.logits[0]

    @property
    def last(self) -> Tensor:
        """Logits of the final feedforward pass, (N, classes)."""
        return self.logits[-1]

    @property
    def avg(self) -> Tensor:
        """Mean of the logits over all T+1 passes, (N, classes) (a halted image's repeated
        last logits count in the mean)."""
        return torch.stack(self.logits).mean(0)

    def scored(self, scoring: Scoring = "last") -> Tensor:
        """The logits a prediction is made from: 'last', 'avg' or 'first'."""
        if scoring not in SCORINGS:
            raise ValueError(f"unknown scoring {scoring!r}: use 'last', 'avg' or 'first'")
        return getattr(self, scoring)

    def stacked(self, name: str, kind: Literal["forward", "feedback"] = "forward") -> Tensor:
        """One tap's features as a tensor (iterations, N, ...)."""
        store = self.forward if kind == "forward" else self.feedback
        if name not in store:
            raise KeyError(f"no {kind} features recorded for {name!r}; recorded: {sorted(store)}")
        return torch.stack(store[name])
