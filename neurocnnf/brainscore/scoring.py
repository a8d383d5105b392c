"""Scoring a CNN-F brain model: public Brain-Score benchmarks, or any local NeuroidAssembly.

A local assembly is a NetCDF DataArray (presentation x neuroid [x time_bin]) with the coords
``stimulus_id``, ``stimulus_path`` (absolute, or relative to the file) and optionally
``object_name`` (PLS splits are stratified by it) and ``repetition`` (then the score is divided
by Brain-Score's split-half internal-consistency ceiling, Spearman-Brown corrected).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr


class ScoringError(RuntimeError):
    """A benchmark or assembly that cannot be scored, with the reason."""


@dataclass
class ScoreResult:
    raw: float  # median Pearson r over neuroids (cross-validated PLS)
    ceiling: float | None  # split-half internal consistency, None without repetitions
    ceiled: float | None  # raw / ceiling
    region: str
    layer: str


def save_assembly(assembly, path: str | os.PathLike) -> Path:
    """Write a (brainio) NeuroidAssembly to NetCDF: MultiIndexes are reset first."""
    array = xr.DataArray(assembly)
    array = array.reset_index([d for d in array.dims
                               if d in array.indexes and array.indexes[d].nlevels > 1])
    # the stimulus set travels as the stimulus_path coord, not as an attribute
    array.attrs = {k: v for k, v in array.attrs.items() if isinstance(v, str | int | float)}
    array.to_netcdf(path)
    return Path(path)


def load_assembly(path: str | os.PathLike):
    """(NeuroidAssembly, StimulusSet) from a NetCDF file written by ``save_assembly``."""
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

    path = Path(path)
    if not path.exists():
        raise ScoringError(f"assembly file {path} does not exist")
    array = xr.load_dataarray(path)
    missing = [c for c in ("stimulus_id", "stimulus_path") if c not in array.coords]
    if missing:
        raise ScoringError(f"{path}: the assembly needs presentation coords {missing}")
    assembly = NeuroidAssembly(array)
    table = {"stimulus_id": array["stimulus_id"].values,
             "stimulus_path": array["stimulus_path"].values}
    for extra in ("object_name", "image_label"):
        if extra in array.coords:
            table[extra] = array[extra].values
    frame = xr.Dataset({k: ("presentation", v) for k, v in table.items()}).to_dataframe()
    frame = frame.drop_duplicates("stimulus_id").reset_index(drop=True)
    stimuli = StimulusSet(frame.drop(columns="stimulus_path"))
    stimuli.stimulus_paths = {sid: str(p if Path(p).is_absolute() else path.parent / p)
                              for sid, p in zip(frame["stimulus_id"], frame["stimulus_path"],
                                                strict=True)}
    stimuli.identifier = f"neurocnnf-local-{path.stem}"
    return assembly, stimuli


def _has_coord(assembly, name: str) -> bool:
    """True for plain coords and for MultiIndex levels (brainio assemblies)."""
    levels = [getattr(assembly.indexes.get(d), "names", []) for d in assembly.dims]
    return name in assembly.coords or any(name in names for names in levels)


def score_assembly(brain_model, assembly, stimuli, region: str = "IT",
                   time_bin: tuple[int, int] = (70, 170)) -> ScoreResult:
    """Brain-Score's PLS metric of the model's ``region`` responses against ``assembly``."""
    from brainscore_vision import load_ceiling, load_metric
    from brainscore_vision.benchmark_helpers.neural_common import average_repetition

    if "time_bin" in assembly.dims:
        if assembly.sizes["time_bin"] != 1:
            raise ScoringError("score one time bin at a time: select it from the assembly")
        assembly = assembly.squeeze("time_bin")
    has_repetitions = _has_coord(assembly, "repetition") and len(
        np.unique(assembly["repetition"].values)) > 1
    target = average_repetition(assembly) if has_repetitions else assembly
    brain_model.start_recording(region, [time_bin])
    source = brain_model.look_at(stimuli)
    kwargs = {}
    if _has_coord(target, "object_name"):
        kwargs = {"crossvalidation_kwargs": {"stratification_coord": "object_name"}}
    raw = float(load_metric("pls", **kwargs)(source, target).values)
    ceiling = None
    if has_repetitions:
        ceiling = float(load_ceiling("internal_consistency")(assembly).values)
    return ScoreResult(raw, ceiling, raw / ceiling if ceiling else None, region,
                       brain_model.region_layer_map[region])


def layer_scores(model, identifier: str, assembly, stimuli, region: str = "IT",
                 iterations: int | None = None):
    """PLS score of every layer at every iteration for ``region`` (a tidy DataFrame).

    Each (layer, iteration) is committed in turn and recorded in the time bin that the default
    ``TimeBins`` gives that iteration. The best row is the data-driven region -> layer choice.
    """
    import pandas as pd

    from neurocnnf.activations.timebins import TimeBins
    from neurocnnf.brainscore.commitment import make_brain_model

    steps = model.iterations if iterations is None else iterations
    bins = TimeBins()
    rows = []
    for layer in model.taps:
        brain_model = make_brain_model(model, f"{identifier}-{layer}", {region: layer},
                                       iterations=steps)
        for t in range(steps + 1):
            window = (int(bins.starts(steps)[t]), int(bins.ends(steps)[t]))
            result = score_assembly(brain_model, assembly, stimuli, region, window)
            rows.append({"region": region, "layer": layer, "iteration": t, "raw": result.raw,
                         "ceiling": result.ceiling, "ceiled": result.ceiled})
    return pd.DataFrame(rows)


def score_benchmark(brain_model, benchmark_id: str) -> float:
    """``brainscore_vision.load_benchmark(benchmark_id)(model)``; offline: one clear error."""
    from brainscore_vision import load_benchmark

    try:
        benchmark = load_benchmark(benchmark_id)
        score = benchmark(brain_model)
    except Exception as error:  # botocore / urllib raise many types when offline
        text = f"{type(error).__name__}: {error}"
        if any(word in text for word in ("Endpoint", "connect", "Connection", "resolve",
                                         "urlopen", "NoCredentials", "timed out", "Network")):
            raise ScoringError(
                f"benchmark {benchmark_id!r} needs its data from Brain-Score's S3 storage, which "
                "cannot be reached from here. Score offline against a local NeuroidAssembly "
                "with `neurocnnf brainscore score CKPT path/to/assembly.nc`.") from None
        raise
    return float(np.asarray(score.values).ravel()[0])
