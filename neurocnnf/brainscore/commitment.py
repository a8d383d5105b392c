"""CNN-F as a Brain-Score BrainModel: iterations answer time bins.

``make_brain_model`` follows CORnet-S's commitment: each region is committed to one layer of
the model; ``start_recording(region, time_bins)`` answers each requested bin with the iteration
whose start time is nearest (``TimeBins``, default 70 ms + 40 ms per iteration), so IT responses
change across Kar2019's bins. Behaviour (``probabilities``) is Brain-Score's own logistic
readout (ProbabilitiesMapping) on the final or averaged logits.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from neurocnnf.activations.timebins import TimeBins
from neurocnnf.brainscore.regions import REGIONS, default_region_layer_map
from neurocnnf.brainscore.unrolled import Unrolled
from neurocnnf.models import CNNF


def configure_environment(cache: str | os.PathLike | None = None) -> Path:
    """Point Brain-Score's caches at a folder we own and forbid run-time pip installs."""
    root = Path(cache or os.environ.get("NEUROCNNF_BRAINSCORE_CACHE",
                                        Path.home() / ".cache" / "neurocnnf" / "brainscore"))
    os.environ["BS_INSTALL_DEPENDENCIES"] = "no"
    for variable in ("RESULTCACHING_HOME", "BRAINSCORE_HOME", "BRAINIO_HOME", "MT_HOME"):
        os.environ.setdefault(variable, str(root / variable.split("_")[0].lower()))
    return root


def preprocess(paths, channels: int, size: int) -> list[np.ndarray]:
    """Stimulus files -> float32 (C, size, size) arrays in [0, 1] (luma for grey models)."""
    from neurocnnf.stimuli.sets import _read_image, convert

    return [convert(_read_image(Path(p)), channels, size).numpy() for p in paths]


def activations_model(model: CNNF, identifier: str, iterations: int | None = None):
    """Brain-Score's PytorchWrapper around the unrolled model (layers '<tap>-t<t>')."""
    from brainscore_vision.model_helpers.activations.pytorch import PytorchWrapper

    unrolled = Unrolled(model, iterations)
    channels, size = model.input_shape[0], model.input_shape[1]
    wrapper = PytorchWrapper(identifier=identifier, model=unrolled,
                             preprocessing=functools.partial(preprocess, channels=channels,
                                                             size=size))
    wrapper.image_size = size
    return wrapper




def make_brain_model(model: CNNF, identifier: str, region_layer_map: dict[str, str] | None = None,
                     time_bins: TimeBins | None = None, scoring: str = "last",
                     visual_degrees: int = 8, iterations: int | None = None):
    """A BrainModel for ``model``; ``identifier`` should include the checkpoint hash."""
    configure_environment()
    brain_model_class = _commitment_class()
    return brain_model_class(model, identifier, region_layer_map, time_bins, scoring,
                             visual_degrees, iterations)


@functools.cache
def _commitment_class():
    from brainscore_core.supported_data_standards.brainio.assemblies import (
        NeuroidAssembly,
        merge_data_arrays,
        walk_coords,
    )
    from brainscore_vision.model_helpers.brain_transformation import (
        BehaviorArbiter,
        ProbabilitiesMapping,
    )
    from brainscore_vision.model_interface import BrainModel

    class Commitment(BrainModel):
        """CNN-F brain model: region -> layer, time bin -> iteration, logits readout."""

        def __init__(self, model, identifier, region_layer_map, time_bins, scoring,
                     visual_degrees, iterations):
            self.model = model
            self._identifier = identifier
            self.steps = model.iterations if iterations is None else iterations
            self.region_layer_map = region_layer_map or default_region_layer_map(
                model.config["arch"], model.taps)
            unknown = set(self.region_layer_map.values()) - set(model.taps)
            if unknown:
                raise ValueError(f"region_layer_map names unknown layer(s) {sorted(unknown)}; "
                                 f"this model has {model.taps}")
            self.time_bins = time_bins or TimeBins()
            self.activations_model = activations_model(model, identifier, self.steps)
            self._visual_degrees = visual_degrees
            readout = "logits-last" if scoring == "last" else "logits-avg"
            self.behavior_model = BehaviorArbiter({BrainModel.Task.probabilities:
                                                   ProbabilitiesMapping(identifier=identifier,
                                                   activations_model=self.activations_model,
                                                   layer=readout)})
            self.do_behavior = False
            self.recording = None

        @property
        def identifier(self) -> str:
            return self._identifier

        def visual_degrees(self) -> int:
            return self._visual_degrees

        def start_task(self, task, *args, **kwargs):
            if task == BrainModel.Task.passive:
                self.do_behavior = False
                return
            if task != BrainModel.Task.probabilities:
                raise NotImplementedError(f"task {task!r}: CNN-F supports 'probabilities'")
            self.behavior_model.start_task(task, *args, **kwargs)
            self.do_behavior = True

        def start_recording(self, recording_target: str, time_bins) -> None:
            if recording_target not in self.region_layer_map:
                raise ValueError(f"unknown region {recording_target!r}; committed: "
                                 f"{sorted(self.region_layer_map)} (of {REGIONS})")
            bins = [tuple(np.asarray(b).tolist()) for b in time_bins]
            iterations = self.time_bins.iteration_for([b[0] for b in bins], self.steps)
            self.recording = (recording_target, bins, iterations)

        def look_at(self, stimuli, number_of_trials: int = 1, require_variance: bool = False):
            if self.do_behavior:
                return self.behavior_model.look_at(stimuli, number_of_trials=number_of_trials,
                                                   require_variance=require_variance)
            if self.recording is None:
                raise RuntimeError("call start_recording(region, time_bins) before look_at")
            region, bins, iterations = self.recording
            layer = self.region_layer_map[region]
            needed = sorted(set(int(t) for t in iterations))
            responses = self.activations_model(
                stimuli, layers=[f"{layer}-t{t}" for t in needed],
                number_of_trials=number_of_trials, require_variance=require_variance)
            per_bin = []
            for (start, end), t in zip(bins, iterations, strict=True):
                part = responses[{"neuroid": responses["layer"].values == f"{layer}-t{t}"}]
                coords = {coord: (dims, values) for coord, dims, values in walk_coords(part)
                          if coord not in ("layer", "neuroid_id")}
                neuroids = np.arange(part.sizes["neuroid"])
                coords.update({
                    "neuroid_id": ("neuroid", [f"{layer}.{i}" for i in neuroids]),
                    "layer": ("neuroid", [layer] * len(neuroids)),
                    "region": ("neuroid", [region] * len(neuroids)),
                    "iteration": ("time_bin", [int(t)]),
                    "time_bin_start": ("time_bin", [start]),
                    "time_bin_end": ("time_bin", [end])})
                values = part.transpose("presentation", "neuroid").values[..., None]
                per_bin.append(NeuroidAssembly(values, coords=coords,
                                               dims=["presentation", "neuroid", "time_bin"]))
            merged = merge_data_arrays(per_bin) if len(per_bin) > 1 else per_bin[0]
            merged = merged.transpose("presentation", "neuroid", "time_bin")
            return merged.squeeze("time_bin") if len(bins) == 1 else merged  # as TemporalAligned

    return Commitment
