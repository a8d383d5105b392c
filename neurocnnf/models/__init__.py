"""The CNN-F engine, its Trace, the architectures and ``from_backbone`` (any feedforward net)."""

from neurocnnf.models.architectures import (
    ARCHITECTURES,
    build_from_config,
    build_model,
    feedback_convnet,
    fmnist_adv,
    fmnist_small,
    wrn,
)
from neurocnnf.models.backbone import BackboneError, from_backbone
from neurocnnf.models.engine import CNNF, FEEDBACK_MODES
from neurocnnf.models.predictive import PredictiveCodingNet, fmnist_pc
from neurocnnf.models.trace import Trace

__all__ = [
    "ARCHITECTURES", "CNNF", "BackboneError", "FEEDBACK_MODES", "PredictiveCodingNet", "Trace",
    "build_from_config", "build_model", "feedback_convnet", "fmnist_adv", "fmnist_pc",
    "fmnist_small", "from_backbone", "wrn",
]
