"""The model interface (:class:`FeedbackModel`), its engines (CNN-F, the predictive-coding
comparator), their Trace, the architectures and the registry that builds them by name."""

from neurocnnf.models.architectures import feedback_convnet, fmnist_adv, fmnist_small, vgg6, wrn
from neurocnnf.models.backbone import BackboneError, from_backbone
from neurocnnf.models.engine import CNNF, FEEDBACK_MODES
from neurocnnf.models.predictive import PredictiveCodingNet, fmnist_pc
from neurocnnf.models.protocol import (
    Call,
    FeedbackMode,
    FeedbackModel,
    check_iterations,
    compared_iterations,
    resolve_iterations,
    supports_halting,
)
from neurocnnf.models.registry import (
    Architecture,
    architecture,
    architecture_names,
    build_from_config,
    build_model,
    register_architecture,
)
from neurocnnf.models.trace import Trace

__all__ = [
    "CNNF", "FEEDBACK_MODES", "Architecture", "BackboneError", "Call", "FeedbackMode",
    "FeedbackModel", "PredictiveCodingNet", "Trace", "architecture", "architecture_names",
    "build_from_config", "build_model", "check_iterations", "compared_iterations",
    "feedback_convnet", "fmnist_adv", "fmnist_pc", "fmnist_small", "from_backbone",
    "register_architecture", "resolve_iterations", "supports_halting", "vgg6", "wrn",
]
