"""neurocnnf: CNN-F (CNNs with recurrent generative feedback) for computational neuroscience."""

import os

from neurocnnf.models import CNNF, FeedbackModel, Trace, build_model, from_backbone

__version__ = "0.1.0"

__all__ = ["CNNF", "FeedbackModel", "Trace", "__version__", "build_model", "from_backbone",
           "load"]


def load(path: str | os.PathLike, map_location: str = "cpu") -> FeedbackModel:
    """Rebuild a trained model from a checkpoint file or run folder (its best checkpoint)."""
    from neurocnnf.train.checkpoint import load_model

    return load_model(path, map_location=map_location)
