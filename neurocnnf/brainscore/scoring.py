"""Scoring a CNN-F brain model: public Brain-Score benchmarks, or any local NeuroidAssembly.

A local assembly is a NetCDF DataArray (presentation x neuroid [x time_bin]) with the coords
``stimulus_id``, ``stimulus_path`` (absolute, or relative to the file) and optionally
``object_name`` (PLS splits are stratified by it) and ``repetition`` (then the score is divided
by Brain-Score's split-half internal-consistency ceiling, Spearman-Brown corrected).

Scores are reported as ``raw`` (median Pearson r), ``ceiling`` and ``explained_variance``:
raw^2 / ceiling, Brain-Score's convention for neural benchmarks since January 2026
(``brainscore_vision.benchmark_helpers.neural_common.explained_variance``; before that
(raw / ceiling)^2), so the number is comparable with the leaderboard.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurocnnf.errors import NeurocnnfError

if TYPE_CHECKING:
    from neurocnnf.models import FeedbackModel


class ScoringError(NeurocnnfError, RuntimeError):
    """A benchmark or assembly that cannot be scored, with the reason."""


@dataclass
class ScoreResult:
    raw: float  # median Pearson r over neuroids (cross-validated PLS)
    ceiling: float | None  # split-half internal consistency, None without repetitions
    explained_variance: float | None  # raw^2 / ceiling: Brain-Score's convention (2026-01)
    region: str
    layer: str
    time_bin: tuple[float, float]  # (start, end) ms of the assembly's bin


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


def time_bins_of(assembly) -> list[tuple[float, float]]:
    """The assembly's own (start, end) time bins, as Brain-Score's benchmarks read them."""
    from brainscore_vision.benchmark_helpers.neural_common import timebins_from_assembly

    if not _has_coord(assembly, "time_bin_start") and "time_bin" not in assembly.coords:
        raise ScoringError("the assembly has no time bins: give it time_bin_start and "
                           "time_bin_end coords (ms), e.g. 70 and 170 for MajajHong2015's IT")
    return [tuple(np.asarray(b).tolist()) for b in timebins_from_assembly(assembly)]


def score_assembly(brain_model, assembly, stimuli, region: str = "IT",
                   time_bin: tuple[float, float] | None = None,
                   record: tuple[float, float] | None = None) -> ScoreResult:
    """Brain-Score's PLS metric of the model's ``region`` responses against ``assembly``.

    ``time_bin``: the assembly's bin to score (default: its only one); ``record``: the bin
    the model is asked for (default: the same bin).
    """
    from brainscore_vision import load_ceiling, load_metric
    from brainscore_vision.benchmark_helpers.neural_common import (
        average_repetition,
        explained_variance,
    )

    bins = time_bins_of(assembly)
    if time_bin is None:
        if len(bins) != 1:
            raise ScoringError(f"the assembly has {len(bins)} time bins: score them one at a "
                               "time (score_time_bins)")
        time_bin = bins[0]
    if tuple(time_bin) not in bins:
        raise ScoringError(f"time bin {time_bin} is not one of the assembly's {bins}")
    if "time_bin" in assembly.dims:
        assembly = assembly.isel(time_bin=bins.index(tuple(time_bin)))
    has_repetitions = _has_coord(assembly, "repetition") and len(
        np.unique(assembly["repetition"].values)) > 1
    target = average_repetition(assembly) if has_repetitions else assembly
    brain_model.start_recording(region, [record or time_bin])
    source = brain_model.look_at(stimuli)
    kwargs = {}
    if _has_coord(target, "object_name"):
        kwargs = {"crossvalidation_kwargs": {"stratification_coord": "object_name"}}
    raw = load_metric("pls", **kwargs)(source, target)
    ceiling = load_ceiling("internal_consistency")(assembly) if has_repetitions else None
    explained = float(explained_variance(raw, ceiling).values) if ceiling is not None else None
    return ScoreResult(float(raw.values), None if ceiling is None else float(ceiling.values),
                       explained, region, brain_model.region_layer_map[region], tuple(time_bin))


def score_time_bins(brain_model, assembly, stimuli, region: str = "IT") -> list[ScoreResult]:
    """``score_assembly`` for each of the assembly's own time bins."""
    return [score_assembly(brain_model, assembly, stimuli, region, time_bin)
            for time_bin in time_bins_of(assembly)]


def layer_scores(model: FeedbackModel, identifier: str, assembly, stimuli, region: str = "IT",
                 iterations: int | None = None, device: str | None = None):
    """PLS score of every layer at every iteration for ``region`` (a tidy DataFrame);
    ``device``: where the model runs (see ``commitment.activations_model``).

    Each (layer, iteration) is committed in turn: the model answers with that iteration alone
    (its own window, nearest-start mode) against the assembly's only time bin. The best row is
    the data-driven region -> layer (and iteration) choice.
    """
    import pandas as pd

    from neurocnnf.brainscore.commitment import make_brain_model
    from neurocnnf.brainscore.regions import default_time_bins
    from neurocnnf.models import resolve_iterations

    iterations = resolve_iterations(model, iterations)
    windows = default_time_bins()[region]
    rows = []
    for layer in model.taps:
        brain_model = make_brain_model(model, f"{identifier}-{layer}", {region: layer},
                                       time_mode="nearest", iterations=iterations,
                                       device=device)
        for t in range(iterations + 1):
            record = (float(windows.starts(iterations)[t]), float(windows.ends(iterations)[t]))
            result = score_assembly(brain_model, assembly, stimuli, region, record=record)
            rows.append({"region": region, "layer": layer, "iteration": t, "raw": result.raw,
                         "ceiling": result.ceiling,
                         "explained_variance": result.explained_variance})
    return pd.DataFrame(rows)


def score_benchmark(brain_model, benchmark_id: str) -> dict[str, float | None]:
    """Score as ``brainscore_vision.score`` does: the benchmark from Brain-Score's registry,
    run by ``brainscore_core.benchmarks.score_benchmark`` (its memory pre-allocation first,
    then the benchmark); offline: one clear error.

    Returns the benchmark's ``score`` (for neural benchmarks raw^2 / ceiling, Brain-Score's
    current convention; for RDM benchmarks raw / ceiling) with its ``raw`` and ``ceiling``
    where the score carries them. The Algonauts 2019 RDM benchmarks (``rdm_benchmark``) are
    built here from the local data when Brain-Score does not have them as a plugin.
    """
    from brainscore_core.benchmarks import score_benchmark as run
    from brainscore_vision import load_benchmark

    from neurocnnf.brainscore import rdm_benchmark
    from neurocnnf.data.roots import DataNotFoundError

    benchmark = None
    if benchmark_id in rdm_benchmark.BENCHMARKS:
        try:
            benchmark = rdm_benchmark.load_benchmark(benchmark_id)
        except DataNotFoundError as error:
            raise ScoringError(f"benchmark {benchmark_id!r}: {error}") from None
    try:
        benchmark = benchmark or load_benchmark(benchmark_id)
        score = run(benchmark, brain_model)
    except Exception as error:  # botocore / urllib raise many types when offline
        text = f"{type(error).__name__}: {error}"
        if any(word in text for word in ("Endpoint", "connect", "Connection", "resolve",
                                         "urlopen", "NoCredentials", "timed out", "Network")):
            raise ScoringError(
                f"benchmark {benchmark_id!r} needs its data from Brain-Score's S3 storage, which "
                "cannot be reached from here. Score offline against a local NeuroidAssembly "
                "with `neurocnnf brainscore score CKPT path/to/assembly.nc`.") from None
        raise
    def number(value) -> float | None:
        return None if value is None else float(np.asarray(getattr(value, "values", value))
                                                   .ravel()[0])

    return {"score": number(score), "raw": number(score.attrs.get("raw")),
            "ceiling": number(score.attrs.get("ceiling"))}
