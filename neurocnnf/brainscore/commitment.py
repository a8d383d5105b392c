"""CNN-F as a Brain-Score BrainModel: iterations answer time bins.

``make_brain_model`` follows Brain-Score's ModelCommitment: each region is committed to one
layer of the model, the activations model gets the visual degrees (microsaccades for
``look_at(..., require_variance=True)``), ``start_recording(region, time_bins)`` answers each
requested bin from the region's iteration windows (``regions.REGION_TIME_BINS``: by default the
overlap-weighted mix of the iterations overlapping the bin, or the nearest-start iteration).
Behaviour: ``probabilities`` is Brain-Score's logistic readout (ProbabilitiesMapping) on the
final or averaged logits; ``label`` chooses among the model's own class names.

This module imports Brain-Score (``brainscore_vision``, ``brainscore_core``) at the top: the
rest of the package imports it only inside the functions that need it, so that neurocnnf
imports without the Brain-Score stack. Brain-Score fixes some of its cache folders when it is
imported: ``caches.configure_environment`` goes first.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from brainscore_core.supported_data_standards.brainio.assemblies import (
    BehavioralAssembly,
    NeuroidAssembly,
    walk_coords,
)
from brainscore_vision.model_helpers.activations.pytorch import PytorchWrapper
from brainscore_vision.model_helpers.brain_transformation import (
    BehaviorArbiter,
    ProbabilitiesMapping,
)
from brainscore_vision.model_interface import BrainModel

from neurocnnf.activations.timebins import MODES, TimeBins
from neurocnnf.brainscore.regions import REGIONS, default_region_layer_map, default_time_bins
from neurocnnf.brainscore.unrolled import Unrolled
from neurocnnf.models import FeedbackModel, resolve_iterations


def preprocess(paths, channels: int, size: int) -> list[np.ndarray]:
    """Stimulus files -> float32 (channels, size, size) arrays in [0, 1] (a file far larger
    than ``size`` is decoded reduced, see ``_read_image``)."""
    from neurocnnf.stimuli.sets import _read_image, convert

    return [convert(_read_image(Path(p), size=size), channels, size).numpy() for p in paths]


def activations_model(model: FeedbackModel, identifier: str, iterations: int | None = None,
                      device: str | None = None):
    """Brain-Score's PytorchWrapper around the unrolled model (layers '<tap>-t<t>').

    Images are preprocessed to RGB (3, size, size) in [0, 1]; a grey model takes their luma.
    ``device``: where the model runs (cpu, cuda, cuda:N, mps); None leaves Brain-Score's own
    choice (cuda when available, else cpu).
    """
    unrolled = Unrolled(model, iterations, rgb_input=True)
    size = model.input_shape[1]
    wrapper = PytorchWrapper(identifier=identifier, model=unrolled,
                             preprocessing=functools.partial(preprocess, channels=3, size=size))
    if device is not None:  # the wrapper moves its model and every batch to its _device
        wrapper._device = torch.device(device)
        wrapper._model = wrapper._model.to(wrapper._device)
    wrapper.image_size = size
    return wrapper


class Commitment(BrainModel):
    """CNN-F brain model: region -> layer, time bin -> iterations, logits readout."""

    def __init__(self, model, identifier, region_layer_map, time_bins, time_mode, scoring,
                 visual_degrees, iterations, class_names, device):
        self.model = model
        self._identifier = identifier
        self.iterations = resolve_iterations(model, iterations)
        self.region_layer_map = region_layer_map or default_region_layer_map(
            model.config["arch"], model.taps)
        unknown = set(self.region_layer_map.values()) - set(model.taps)
        if unknown:
            raise ValueError(f"region_layer_map names unknown layer(s) {sorted(unknown)}; "
                             f"this model has {model.taps}")
        self.time_bins = {**default_time_bins(), **(time_bins or {})}
        if time_mode not in MODES:
            raise ValueError(f"unknown time-bin mode {time_mode!r}; choose from {list(MODES)}")
        self.time_mode = time_mode
        self.class_names = list(class_names) if class_names is not None else None
        self.activations_model = activations_model(model, identifier, self.iterations, device)
        # as Brain-Score's ModelCommitment: microsaccades need the visual degrees
        self.activations_model._extractor.set_visual_degrees(visual_degrees)
        self._visual_degrees = visual_degrees
        self.readout = "logits-last" if scoring == "last" else "logits-avg"
        self.behavior_model = BehaviorArbiter({BrainModel.Task.probabilities:
                                               ProbabilitiesMapping(identifier=identifier,
                                               activations_model=self.activations_model,
                                               layer=self.readout)})
        self.task = BrainModel.Task.passive
        self.choices = None
        self.recording = None

    @property
    def identifier(self) -> str:
        return self._identifier

    def visual_degrees(self) -> int:
        return self._visual_degrees

    def start_task(self, task, *args, **kwargs):
        if task == BrainModel.Task.label:
            self.choices = self._choices(kwargs.get("choice_labels", args[0] if args else None))
        elif task == BrainModel.Task.probabilities:
            self.behavior_model.start_task(task, *args, **kwargs)
        elif task != BrainModel.Task.passive:
            raise NotImplementedError(f"task {task!r}: CNN-F supports 'passive', "
                                      "'probabilities' and 'label' (its own classes)")
        self.task = task

    def _choices(self, choice_labels):
        """Indices (into the logits) of the requested labels, which must be our classes."""
        known = self.class_names or []
        if isinstance(choice_labels, str) or choice_labels is None or not known or any(
                label not in known for label in choice_labels):
            raise NotImplementedError(
                f"task 'label' with {choice_labels!r}: this {len(known) or 'unnamed'}-class "
                f"model labels only its own classes {known} (not ImageNet)")
        return [known.index(label) for label in choice_labels], list(choice_labels)

    def start_recording(self, recording_target: str, time_bins) -> None:
        if recording_target not in self.region_layer_map:
            raise ValueError(f"unknown region {recording_target!r}; committed: "
                             f"{sorted(self.region_layer_map)} (of {REGIONS})")
        bins = [tuple(np.asarray(b).tolist()) for b in time_bins]
        windows = self.time_bins.get(recording_target, TimeBins())
        weights = windows.weights(bins, self.iterations, self.time_mode)
        self.recording = (recording_target, bins, weights)

    def look_at(self, stimuli, number_of_trials: int = 1, require_variance: bool = False):
        if self.task == BrainModel.Task.probabilities:
            return self.behavior_model.look_at(stimuli, number_of_trials=number_of_trials,
                                               require_variance=require_variance)
        if self.task == BrainModel.Task.label:
            return self._labels(stimuli, number_of_trials, require_variance)
        if self.recording is None:
            raise RuntimeError("call start_recording(region, time_bins) before look_at")
        return self._neural(stimuli, number_of_trials, require_variance)

    def _activations(self, stimuli, layers, number_of_trials, require_variance):
        # Brain-Score's extractor keeps the trial count of its last require_variance call
        if not require_variance:
            self.activations_model._extractor._microsaccade_helper.number_of_trials = 1
        return self.activations_model(stimuli, layers=layers,
                                      number_of_trials=number_of_trials,
                                      require_variance=require_variance)

    def _labels(self, stimuli, number_of_trials, require_variance):
        indices, labels = self.choices
        logits = self._activations(stimuli, [self.readout], number_of_trials,
                                   require_variance)
        logits = logits.transpose("presentation", "neuroid")
        chosen = [labels[i] for i in logits.values[:, indices].argmax(axis=1)]
        coords = {coord: (dims, values) for coord, dims, values
                  in walk_coords(logits["presentation"])}
        coords["label"] = ("presentation", chosen)
        return BehavioralAssembly([chosen], coords=coords, dims=["choice", "presentation"])

    def _neural(self, stimuli, number_of_trials, require_variance):
        """presentation x neuroid x time_bin: each bin the weighted sum of iterations."""
        region, bins, weights = self.recording
        layer = self.region_layer_map[region]
        needed = np.flatnonzero(weights.any(axis=0))
        responses = self._activations(stimuli, [f"{layer}-t{t}" for t in needed],
                                      number_of_trials, require_variance)
        responses = responses.transpose("presentation", "neuroid")
        per_iteration = np.stack([responses.values[:, responses["layer"].values == name]
                                  for name in (f"{layer}-t{t}" for t in needed)], axis=-1)
        values = per_iteration @ weights[:, needed].T  # presentation x neuroid x time_bin
        part = responses[{"neuroid": responses["layer"].values == f"{layer}-t{needed[0]}"}]
        coords = {coord: (dims, values) for coord, dims, values in walk_coords(part)
                  if dims == ("presentation",)}
        neuroids = np.arange(values.shape[1])
        iterations = np.arange(self.iterations + 1)
        coords.update({
            "neuroid_id": ("neuroid", [f"{layer}.{i}" for i in neuroids]),
            "layer": ("neuroid", [layer] * len(neuroids)),
            "region": ("neuroid", [region] * len(neuroids)),
            "iteration_mean": ("time_bin", weights @ iterations),
            "time_bin_start": ("time_bin", [b[0] for b in bins]),
            "time_bin_end": ("time_bin", [b[1] for b in bins])})
        assembly = NeuroidAssembly(values, coords=coords,
                                   dims=["presentation", "neuroid", "time_bin"])
        return assembly.squeeze("time_bin") if len(bins) == 1 else assembly


def make_brain_model(model: FeedbackModel, identifier: str,
                     region_layer_map: dict[str, str] | None = None,
                     time_bins: dict[str, TimeBins] | None = None, time_mode: str = "overlap",
                     scoring: str = "last", visual_degrees: int = 8,
                     iterations: int | None = None, class_names: list[str] | None = None,
                     device: str | None = None):
    """A BrainModel for ``model``; ``identifier`` should include the checkpoint hash.

    ``time_bins``: region -> iteration windows (default ``regions.REGION_TIME_BINS``);
    ``time_mode``: "overlap" or "nearest" (see ``TimeBins.weights``); ``class_names``: the
    model's classes in logit order (enables ``start_task('label', names)``); ``device``: see
    :func:`activations_model`.
    """
    return Commitment(model, identifier, region_layer_map, time_bins, time_mode, scoring,
                      visual_degrees, iterations, class_names, device)
