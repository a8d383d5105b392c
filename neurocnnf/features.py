"""Activations in memory, THINGSvision-style: one call from a model and a folder of images (or
any stimulus set) to the xarray Dataset that ``neurocnnf extract`` writes::

    import neurocnnf
    features = neurocnnf.extract_features("pretrained:fmnist-small-cnnf5", "my_images/",
                                          layers=["conv2", "logits"], iterations=5)
    features["conv2"]          # (presentation, iteration, neuroid_conv2)

It runs the streamed extraction (``neurocnnf.activations.extract``) into a temporary NetCDF
file that is loaded and deleted, so the values are exactly the file path's; use ``extract``
itself for sets too large for memory or to resume after a kill.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from neurocnnf.extras import require

if TYPE_CHECKING:
    import xarray as xr

    from neurocnnf.models import FeedbackModel
    from neurocnnf.stimuli import StimulusSet


def _stimuli(images: str | os.PathLike | list | StimulusSet) -> StimulusSet:
    """A stimulus set from a folder, a list of image files, a spec or a set."""
    from neurocnnf.stimuli import StimulusSet, from_folder, load_stimuli
    from neurocnnf.stimuli.sets import from_paths

    if isinstance(images, StimulusSet):
        return images
    if isinstance(images, list | tuple):
        paths = [Path(p) for p in images]
        return from_paths("images", [p.stem for p in paths], paths,
                          {"filename": [str(p) for p in paths]})
    if Path(images).is_dir():
        return from_folder(images)
    return load_stimuli(str(images))


def extract_features(model: FeedbackModel | str | os.PathLike,
                     images: str | os.PathLike | list | StimulusSet,
                     layers: list[str] | None = None, iterations: int | None = None,
                     eta: float | None = None, batch_size: int = 64, device: str = "auto",
                     progress: bool = False) -> xr.Dataset:
    """Per-iteration activations of ``model`` for ``images``, as an in-memory xarray Dataset.

    model: a model, or a checkpoint file, run folder or ``pretrained:NAME`` (loaded on
    ``device``: 'auto', 'cpu', 'cuda', ...). images: a folder (with a stimuli.csv, or without
    one: every image in it, ids from the file names, ``category`` from subfolders), a list of
    image files, a stimulus-set spec (``kriegeskorte92``, ``fashion_mnist:test:100``) or a
    StimulusSet. layers: store variable names (None: all). iterations / eta: the model's
    unless given. Variables are (presentation, iteration, neuroid_<layer>) float32, as in
    ``neurocnnf extract``'s store.
    """
    xr = require("xarray", "analysis", "extract_features")
    from neurocnnf.activations import extract
    from neurocnnf.device import resolve_device
    from neurocnnf.models import FeedbackModel
    from neurocnnf.train import load_model

    model_id = "model"
    if not isinstance(model, FeedbackModel):
        model_id = str(model)
        model = load_model(model, map_location=resolve_device(device))
    stimuli = _stimuli(images)
    with tempfile.TemporaryDirectory(prefix="neurocnnf-features-") as scratch:
        path = extract(model, stimuli, Path(scratch) / "features.nc", layers=layers,
                       iterations=iterations, eta=eta, batch_size=batch_size,
                       model_id=model_id, progress=progress)
        return xr.load_dataset(path, engine="h5netcdf")
