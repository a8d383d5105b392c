"""CNN-F layers with tied feedback weights and per-call latent state."""

from neurocnnf.nn.modules import (
    AdaPool,
    AdaReLU,
    AvgPool,
    Bias,
    FeedbackModule,
    FeedbackNorm,
    FeedbackSequential,
    Flatten,
    Normalize,
    PreActResidual,
    RMSNorm,
    Tap,
    TiedConv2d,
    TiedLinear,
)
from neurocnnf.nn.state import InferenceState

__all__ = [
    "AdaPool", "AdaReLU", "AvgPool", "Bias", "FeedbackModule", "FeedbackNorm",
    "FeedbackSequential", "Flatten", "InferenceState", "Normalize", "PreActResidual", "RMSNorm",
    "Tap", "TiedConv2d", "TiedLinear",
]
