"""A CNN-F unrolled over iterations into named modules, for hook-based extractors.

Forward hooks keep only the last call of a module, so a module that runs once per iteration
would show only the last iteration. ``Unrolled`` runs the model once and passes every recorded
feature through its own Identity: ``<tap>-t<t>`` for each tap and iteration, ``logits-t<t>``,
``logits-last`` and ``logits-avg``, and the plain ``<tap>`` for the last iteration (the state the
model settles in; Brain-Score's memory pre-allocation probes a region's committed layer by that
name). Brain-Score's PytorchWrapper (or THINGSvision) can then read any of them by name. With
``rgb_input`` a grey model takes RGB input and sees its ITU-R 601 luma (Brain-Score's
microsaccades shift only 3-channel images).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neurocnnf.models import FeedbackModel, resolve_iterations


class Unrolled(nn.Module):
    """``forward(x)`` returns the scored logits; every per-iteration output has a module name."""

    def __init__(self, model: FeedbackModel, iterations: int | None = None, scoring: str = "last",
                 rgb_input: bool = False) -> None:
        super().__init__()
        self.model = model
        self.iterations = resolve_iterations(model, iterations)
        self.scoring = scoring
        self.luma = rgb_input and model.input_shape[0] == 1
        for name in [*self.layer_names(), *model.taps]:  # direct children: a name is its path
            self.add_module(name, nn.Identity())

    def layer_names(self) -> list[str]:
        """Readable outputs: '<tap>-t<t>' for t = 0..T, 'logits-t<t>', 'logits-last/avg'."""
        names = [f"{tap}-t{t}" for tap in self.model.taps for t in range(self.iterations + 1)]
        names += [f"logits-t{t}" for t in range(self.iterations + 1)]
        return names + ["logits-last", "logits-avg"]

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) in [0, 1]; C = 3 for a grey model with ``rgb_input``."""
        if self.luma:
            x = torch.tensordot(x, x.new_tensor([0.299, 0.587, 0.114]), dims=([1], [0]))[:, None]
        trace = self.model(x, iterations=self.iterations, layers=None)
        for tap, values in trace.forward.items():
            for t, value in enumerate(values):
                self._modules[f"{tap}-t{t}"](value)
            self._modules[tap](values[-1])
        for t, value in enumerate(trace.logits):
            self._modules[f"logits-t{t}"](value)
        avg = self._modules["logits-avg"](trace.avg)
        last = self._modules["logits-last"](trace.last)
        return last if self.scoring == "last" else avg

    def extra_repr(self) -> str:
        return f"iterations={self.iterations}, scoring={self.scoring!r}"
