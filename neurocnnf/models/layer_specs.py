"""The layer list of a :func:`~neurocnnf.models.backbone.from_backbone` model, as stored in its
``model.config`` (JSON: one dict per layer), and its inverse: what lets a checkpoint rebuild
the model without the backbone's code. :class:`Residual`, the one layer the conversion adds to
:mod:`neurocnnf.nn`'s, lives here with its description.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from neurocnnf import nn as fnn


class Residual(fnn.FeedbackModule):
    """``branch(x) + shortcut(x)``; feedback is ``branch.feedback(g) + shortcut.feedback(g)``.

    An empty ``shortcut`` is the identity (x + f(x)); a non-empty one is a projection.
    """

    def __init__(self, branch: fnn.FeedbackSequential, shortcut: fnn.FeedbackSequential) -> None:
        super().__init__()
        self.branch, self.shortcut = branch, shortcut

    def forward(self, x: Tensor, state: fnn.InferenceState) -> Tensor:
        return self.branch(x, state) + self.shortcut(x, state)

    def feedback(self, g: Tensor, state: fnn.InferenceState) -> Tensor:
        return self.branch.feedback(g, state) + self.shortcut.feedback(g, state)


def layer_specs(layers: Sequence[fnn.FeedbackModule]) -> list[dict[str, Any]]:
    """JSON-serializable description of CNN-F layers (inverse: :func:`build_layers`)."""
    return [_spec(layer) for layer in layers]


def _spec(layer: fnn.FeedbackModule) -> dict[str, Any]:
    if isinstance(layer, fnn.TiedConv2d):
        out_c, in_c, k, _ = layer.weight.shape
        return {"type": "conv", "in": in_c, "out": out_c, "kernel": k, "stride": layer.stride,
                "padding": layer.padding}
    if isinstance(layer, fnn.TiedLinear):
        return {"type": "linear", "in": layer.weight.shape[1], "out": layer.weight.shape[0]}
    if isinstance(layer, fnn.Bias):
        return {"type": "bias", "channels": layer.bias.numel()}
    if isinstance(layer, fnn.AdaPool | fnn.AvgPool):
        return {"type": type(layer).__name__, "kernel": layer.kernel_size}
    if isinstance(layer, fnn.Tap):
        return {"type": "tap", "name": layer.name}
    if isinstance(layer, Residual):
        return {"type": "residual", "branch": layer_specs(layer.branch.layers),
                "shortcut": layer_specs(layer.shortcut.layers)}
    return {"type": type(layer).__name__}


def build_layers(specs: Sequence[dict[str, Any]]) -> list[fnn.FeedbackModule]:
    """CNN-F layers from :func:`layer_specs` output (fresh parameters, same names and shapes)."""
    builders = {
        "conv": lambda s: fnn.TiedConv2d(s["in"], s["out"], s["kernel"], s["stride"], s["padding"]),
        "linear": lambda s: fnn.TiedLinear(s["in"], s["out"]),
        "bias": lambda s: fnn.Bias(s["channels"]),
        "AdaPool": lambda s: fnn.AdaPool(s["kernel"]),
        "AvgPool": lambda s: fnn.AvgPool(s["kernel"]),
        "tap": lambda s: fnn.Tap(s["name"]),
        "residual": lambda s: Residual(fnn.FeedbackSequential(*build_layers(s["branch"])),
                                       fnn.FeedbackSequential(*build_layers(s["shortcut"]))),
        "AdaReLU": lambda s: fnn.AdaReLU(), "Flatten": lambda s: fnn.Flatten(),
        "RMSNorm": lambda s: fnn.RMSNorm(), "FeedbackNorm": lambda s: fnn.FeedbackNorm(),
    }
    unknown = [s.get("type") for s in specs if s.get("type") not in builders]
    if unknown:
        raise ValueError(f"unknown layer type(s) {unknown} in a backbone model config")
    return [builders[s["type"]](s) for s in specs]
