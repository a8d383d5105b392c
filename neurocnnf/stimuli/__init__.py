"""Stimulus sets (Brain-Score conventions) and their perturbed versions."""

from neurocnnf.stimuli.export import write_folder
from neurocnnf.stimuli.perturb import KINDS, apply, perturb, render
from neurocnnf.stimuli.sets import (
    ConversionWarning,
    StimulusError,
    StimulusSet,
    brain_stimuli,
    conversion_note,
    convert,
    from_dataset,
    from_folder,
    input_conversion,
    kriegeskorte92_set,
    load_stimuli,
)

__all__ = [
    "KINDS", "ConversionWarning", "StimulusError", "StimulusSet", "apply", "brain_stimuli",
    "conversion_note",
    "convert", "from_dataset", "from_folder", "input_conversion", "kriegeskorte92_set",
    "load_stimuli", "perturb", "render", "write_folder",
]
