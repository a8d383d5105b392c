"""neurocnnf: CNN-F (CNNs with recurrent generative feedback) for computational neuroscience."""

from neurocnnf.models import CNNF, Trace, build_model

__version__ = "0.1.0"

__all__ = ["CNNF", "Trace", "__version__", "build_model", "load"]


def load(path, map_location="cpu"):
    """Rebuild a trained model from a checkpoint directory or file (see neurocnnf.train)."""
    from neurocnnf.train.checkpoint import load_model

    return load_model(path, map_location=map_location)
