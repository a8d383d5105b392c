"""What a model expects of its input images, for the records that travel with its outputs."""

from __future__ import annotations

import torch

from neurocnnf.models.protocol import FeedbackModel


def input_normalisation(model: FeedbackModel) -> dict[str, list[float]]:
    """The per-channel mean and sd (pixel scale [0, 1]) the model subtracts and divides by
    first; 0 and 1 for a model that takes pixels as they are."""
    from neurocnnf.nn import Normalize

    source = next((m for m in model.modules() if isinstance(m, Normalize)), model)
    mean, std = getattr(source, "mean", None), getattr(source, "std", None)
    if not isinstance(mean, torch.Tensor) or not isinstance(std, torch.Tensor):
        return {"mean": [0.0] * model.input_shape[0], "std": [1.0] * model.input_shape[0]}
    return {"mean": mean.flatten().tolist(), "std": std.flatten().tolist()}
