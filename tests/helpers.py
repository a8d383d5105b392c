"""Small builders shared by several test files (imported as ``helpers``: pytest puts this
folder on sys.path)."""

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from neurocnnf.stimuli import StimulusSet
from neurocnnf.stimuli.sets import _base_metadata


def labelled_set(n: int, seed: int = 0, image_seed: int = 0) -> StimulusSet:
    """``n`` random 1x28x28 uint8 images with labels 0, 1, ..., ids t0, t1, ...; ``seed`` is
    the set's perturbation seed, ``image_seed`` draws the pixels."""
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(image_seed))
    return StimulusSet("toy", _base_metadata([f"t{i}" for i in range(n)],
                                             {"label": np.arange(n) % 10}), images=images,
                       seed=seed)


def analysis_script(name: str) -> ModuleType:
    """The stand-alone script ``analyses/<name>.py`` imported as a module."""
    path = Path(__file__).resolve().parents[1] / "analyses" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
