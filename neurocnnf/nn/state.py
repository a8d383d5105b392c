"""Per-call state of an iterative CNN-F inference.

The layers keep nothing between calls: masks, pooling indices and remembered feedback live in
an :class:`InferenceState` that one ``model(x)`` call creates and owns. Two interleaved calls on
one model therefore never see each other's latents.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn


@dataclass
class InferenceState:
    """What one inference call remembers between its feedforward and feedback passes.

    ``eta``: step size of the online update (eqs. 6-7).
    ``record``: names of taps whose features are kept (None keeps all, empty keeps none).
    ``forward`` / ``feedback``: tap name -> list of tensors, one per pass, in pass order.
    ``mask_stats``: when True, latent layers append the fraction of units whose mask flipped.
    ``latents``: whether the latent layers (AdaReLU, AdaPool) keep their masks and pooling
    indices for a feedback pass; the engine turns it off for the layers no feedback pass will
    reach (the encoder unless decoding, the body when T = 0), which then compute their output
    alone.
    """

    eta: float = 0.1
    record: Collection[str] | None = None
    mask_stats: bool = False
    latents: bool = True
    forward: dict[str, list[Tensor]] = field(default_factory=dict)
    feedback: dict[str, list[Tensor]] = field(default_factory=dict)
    mask_flips: dict[str, list[Tensor]] = field(default_factory=dict)
    _slots: dict[int, dict[str, Any]] = field(default_factory=dict)

    def slot(self, module: nn.Module) -> dict[str, Any]:
        """The scratch dict of ``module`` for this call (created empty on first use)."""
        return self._slots.setdefault(id(module), {})

    def wants(self, name: str) -> bool:
        return self.record is None or name in self.record

    def note_mask(self, name: str, old: Tensor | None, new: Tensor) -> None:
        """Record, per sample, the fraction of units whose latent changed from old to new."""
        if self.mask_stats and old is not None and old.shape == new.shape:
            flipped = (old != new).flatten(1).float().mean(1).detach()
            self.mask_flips.setdefault(name, []).append(flipped)

    def forget(self, modules: Iterable[nn.Module]) -> None:
        """Drop the scratch dicts of ``modules`` (masks, pooling indices, remembered feedback).
        In a compiled pass every latent still held here at the end is a graph output written
        to memory; forgotten, the compiler fuses it away."""
        for module in modules:
            self._slots.pop(id(module), None)
