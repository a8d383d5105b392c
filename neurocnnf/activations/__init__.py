"""Per-iteration activations as xarray datasets: extraction, stores, time bins, reduction."""

from neurocnnf.activations.extract import (
    OUTPUTS,
    SCALARS,
    ExtractOptions,
    Reduce,
    extract,
    extract_dataset,
    model_digest,
    resolve_layers,
    trace_arrays,
)
from neurocnnf.activations.store import (
    Shard,
    StoreError,
    assembly,
    layers_of,
    open_activations,
    parse_shard,
)
from neurocnnf.activations.timebins import TimeBins

__all__ = [
    "OUTPUTS", "SCALARS", "ExtractOptions", "Reduce", "Shard", "StoreError", "TimeBins", "assembly",
    "extract", "extract_dataset", "layers_of", "model_digest", "open_activations",
    "parse_shard", "resolve_layers", "trace_arrays",
]
