"""The CNN-F engine, its Trace and the architectures."""

from neurocnnf.models.architectures import (
    ARCHITECTURES,
    build_from_config,
    build_model,
    feedback_convnet,
    fmnist_adv,
    fmnist_small,
    wrn,
)
from neurocnnf.models.engine import CNNF
from neurocnnf.models.trace import Trace

__all__ = [
    "ARCHITECTURES", "CNNF", "Trace", "build_from_config", "build_model", "feedback_convnet",
    "fmnist_adv", "fmnist_small", "wrn",
]
