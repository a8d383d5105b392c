"""Stimulus sets (Brain-Score conventions) and their perturbed versions."""

from neurocnnf.stimuli.export import write_folder
from neurocnnf.stimuli.perturb import KINDS, apply, perturb, render
from neurocnnf.stimuli.sets import (
    StimulusError,
    StimulusSet,
    conversion_note,
    convert,
    from_dataset,
    from_folder,
    kriegeskorte92_set,
    load_stimuli,
)

__all__ = [
    "KINDS", "StimulusError", "StimulusSet", "apply", "conversion_note", "convert",
    "from_dataset", "from_folder", "kriegeskorte92_set", "load_stimuli", "perturb", "render",
    "write_folder",
]
