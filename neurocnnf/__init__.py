"""neurocnnf: CNN-F (CNNs with recurrent generative feedback) for computational neuroscience.

The model classes load torch on first use, not on ``import neurocnnf``, so that the command
line starts (and rejects a wrong option) without it.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from neurocnnf.version import __version__

if TYPE_CHECKING:
    from neurocnnf.features import extract_features
    from neurocnnf.models import CNNF, FeedbackModel, Trace, build_model, from_backbone

__all__ = ["CNNF", "FeedbackModel", "Trace", "__version__", "build_model", "extract_features",
           "from_backbone", "load"]
_LAZY = {"CNNF": "neurocnnf.models", "FeedbackModel": "neurocnnf.models",
         "Trace": "neurocnnf.models", "build_model": "neurocnnf.models",
         "from_backbone": "neurocnnf.models", "extract_features": "neurocnnf.features"}


def __getattr__(name: str) -> Any:
    """The public classes and functions, imported (with torch) when first asked for."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neurocnnf' has no attribute {name!r}")


def load(path: str | os.PathLike, map_location: str = "cpu") -> FeedbackModel:
    """Rebuild a trained model from a checkpoint file or run folder (its best checkpoint)."""
    from neurocnnf.train.checkpoint import load_model

    return load_model(path, map_location=map_location)
