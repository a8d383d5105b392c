"""Per-iteration activations of a CNN-F for a stimulus set, as a labelled xarray dataset.

Variables (dims presentation x iteration x neuroid_<var>, float32, or float16 if asked):
  <tap>             forward features f_t(l) of each requested layer (post-AdaReLU)
  <tap>_feedback    feedback g_t(l) arriving at that layer in the pass that led to iteration t
                    (NaN at iteration 0; body layers only)
  h_hat             the input to the feedforward body at iteration t (eq. 6); h_hat_0 = h
  logits, probabilities
Per-iteration scalars (presentation x iteration): reconstruction_error = RMS(h - h_hat_t),
logit_change = ||logits_t - logits_(t-1)|| (NaN at 0), mask_flip_fraction = fraction of
AdaReLU/AdaPool latents that changed since the previous pass, averaged over latent layers.
Coords: stimulus_id and every metadata column on presentation; iteration, time_bin_start and
time_bin_end (ms) on iteration; neuroid_id, channel, y, x (suffixed by the variable) on neuroids.
With adaptive halting (``halt=tol``): ``halted_at`` (presentation; float32 holding whole
numbers), the iteration at which each image stopped; later iterations repeat its last state.
``ds.set_coords("halted_at")`` makes it a coordinate that every variable carries along.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from neurocnnf.activations.direct import aligned_empty
from neurocnnf.activations.reduce import (
    Projection,
    fit_pca,
    from_arrays,
    random_projection,
    to_arrays,
)
from neurocnnf.activations.store import (
    FINGERPRINT,
    BatchWriter,
    PartialStore,
    Shard,
    StoreError,
    open_activations,
    partial_path,
    repeated_block,
    store_format,
)
from neurocnnf.activations.timebins import TimeBins
from neurocnnf.data.download import file_digest
from neurocnnf.device import bf16_autocast
from neurocnnf.lock import output_lock
from neurocnnf.models import FeedbackModel, resolve_iterations, supports_halting
from neurocnnf.models.engine import check_layers, eagerly
from neurocnnf.models.inputs import input_normalisation
from neurocnnf.stimuli import StimulusSet, conversion_note, input_conversion, render

OUTPUTS = ("h_hat", "logits", "probabilities")
SCALARS = ("reconstruction_error", "logit_change", "mask_flip_fraction")
MAX_BATCH_MB = 256.0  # unreduced activations per batch (one model call), MiB
DTYPES = {"float32": "f4", "float16": "f2"}  # storage dtypes of the variables


@dataclass(frozen=True)
class Reduce:
    """Reduce every layer larger than ``min_size`` to ``components``: 'pca' fitted on
    ``reference`` stimuli (default: the first 500 of the set) or a seeded 'random' projection."""

    method: str = "pca"
    components: int = 256
    min_size: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("pca", "random"):
            raise ValueError(f"unknown reduction {self.method!r}: use 'pca' or 'random'")
        if isinstance(self.components, bool) or not isinstance(self.components, int) \
                or self.components < 1:
            raise ValueError(f"a reduction keeps an integer >= 1 of components, got "
                             f"{self.components!r}")

    @classmethod
    def parse(cls, text: str) -> Reduce:
        """'pca:K' or 'random:K' (K defaults to 256) as a Reduce; ValueError naming --reduce."""
        method, _, k = text.partition(":")
        try:
            return cls(method, int(k or 256))
        except ValueError as error:
            raise ValueError(f"--reduce {text!r} must look like pca:K or random:K with K an "
                             f"integer >= 1 ({error})") from None


def resolve_layers(model: FeedbackModel, layers: list[str] | tuple[str, ...] | None) -> list[str]:
    """Taps and output names to extract (None: every tap and every output)."""
    names = list(model.taps) + list(OUTPUTS)
    check_layers(layers, tuple(names))
    return names if layers is None else list(layers)


def model_digest(model: FeedbackModel) -> str:
    """sha256 over the model's tensors (a checkpoint-independent identity)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def trace_arrays(model: FeedbackModel, images: torch.Tensor, layers: list[str], iterations: int,
                 eta: float | None, feedback: bool = True, halt: float | None = None,
                 bf16: bool = False, feedback_by_iteration: bool = False
                 ) -> dict[str, np.ndarray]:
    """One batch: variable name -> array (B, T+1, D) (or (B, T+1) for scalars), float32;
    with ``halt``, also ``halted_at`` (B,). A layer computed once (an encoder tap, the same at
    every iteration) is one (B, 1, D) block repeated along the iteration axis: a read-only
    view (``store.repeated_block``), copied and stored once. ``feedback_by_iteration``: the
    feedback arrays lie iteration by iteration in memory (a transposed view: each iteration's
    (B, D) contiguous), as a store chunked by iteration writes them. ``bf16``: the model runs under
    bfloat16 autocast (``device.bf16_autocast``); the arrays are float32 all the same. From a
    GPU, each array is assembled there and copied once into pinned host memory without
    waiting; the copies are awaited together before returning."""
    taps = [name for name in layers if name in model.taps]
    halting = {} if halt is None else {"halt": halt}
    autocast = bf16_autocast(images.device) if bf16 else contextlib.nullcontext()
    with torch.no_grad(), autocast:
        trace = model(images, iterations=iterations, eta=eta, layers=taps, mask_stats=True,
                      **halting)
    b, device = images.shape[0], images.device
    pinned = device.type == "cuda"

    def to_host(tensor):
        tensor = tensor.float()
        if not pinned:
            return tensor.numpy()
        host = torch.empty_like(tensor, device="cpu", pin_memory=True)  # in its layout
        return host.copy_(tensor, non_blocking=True).numpy()

    def with_nan_first(tensors, width=None, last=iterations, by_iteration=False):
        """The last len(tensors) iterations' (B, ...) tensors as one (B, last+1[, width])
        array, NaN where nothing was traced (``by_iteration``: laid out (last+1, B, width));
        one copy of each, from any memory layout (a compiled CPU pass returns channels_last
        maps)."""
        shape = (last + 1, b) if by_iteration else (b, last + 1)
        shape += () if width is None else (width,)
        # on the CPU, block-aligned: the stores write its bytes past the page cache uncopied
        out = aligned_empty(shape) if device.type == "cpu" else torch.empty(shape, device=device)
        out = out.transpose(0, 1) if by_iteration else out
        first = last + 1 - len(tensors)
        out[:, :first] = float("nan")
        for i, tensor in enumerate(tensors, first):
            out[:, i].view(tensor.shape).copy_(tensor)
        return to_host(out)

    def every_iteration(tensors):
        width = tensors[0][0].numel()
        once = len(tensors) == iterations + 1 > 1 and all(t is tensors[0] for t in tensors)
        if once:  # the same tensor at every iteration: one block, repeated
            return np.broadcast_to(with_nan_first(tensors[:1], width, 0),
                                   (b, iterations + 1, width))
        return with_nan_first(tensors, width)

    out: dict[str, np.ndarray] = {}
    for name in taps:
        out[name] = every_iteration(trace.forward[name])
        if feedback and name in model.feedback_taps:
            out[f"{name}_feedback"] = with_nan_first(trace.feedback.get(name, []),
                                                       out[name].shape[2],
                                                       by_iteration=feedback_by_iteration)
    logits = torch.stack(trace.logits, 1).float()
    if "h_hat" in layers:
        out["h_hat"] = every_iteration(trace.h_hat)
    if "logits" in layers:
        out["logits"] = to_host(logits)
    if "probabilities" in layers:
        out["probabilities"] = to_host(logits.softmax(-1))
    h = trace.h.reshape(b, -1)
    out["reconstruction_error"] = to_host(torch.stack(
        [(h - x.reshape(b, -1)).pow(2).mean(1).sqrt() for x in trace.h_hat], 1))
    out["logit_change"] = with_nan_first((logits[:, 1:] - logits[:, :-1]).norm(dim=-1).unbind(1))
    flips = [torch.stack(v, 1) for v in trace.mask_flips.values()]  # (B, T) per latent layer
    # NaN where a model has no latent masks (the predictive-coding comparator)
    out["mask_flip_fraction"] = with_nan_first(torch.stack(flips).mean(0).unbind(1) if flips
                                               else ())
    if trace.halted_at is not None:
        out["halted_at"] = to_host(trace.halted_at)
    if pinned:
        torch.cuda.current_stream(device).synchronize()
    return out


def _neuroid_coords(name: str, shape: tuple[int, ...]) -> dict[str, tuple]:
    """neuroid_id / channel / y / x of a layer with feature shape (C, H, W) or (D,)."""
    dim = f"neuroid_{name}"
    if len(shape) == 1:
        channel = np.arange(shape[0])
        y = x = np.zeros_like(channel)
        places = ["0.0"]
    else:
        grids = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
        channel, y, x = (g.ravel() for g in grids)
        places = [f"{i}.{j}" for i in range(shape[1]) for j in range(shape[2])]
    # "name.channel.y.x", channel-major as the grids: one string per channel and per place
    ids = np.array([head + place for head in [f"{name}.{c}." for c in range(shape[0])]
                    for place in places])
    return {f"neuroid_id_{name}": (dim, ids), f"channel_{name}": (dim, channel),
            f"y_{name}": (dim, y), f"x_{name}": (dim, x)}


def _metadata_coords(stimuli: StimulusSet) -> dict[str, tuple]:
    coords = {}
    for column in stimuli.metadata.columns:
        values = stimuli.metadata[column].to_numpy()
        if values.dtype == object:
            values = values.astype(str)
        coords[column] = ("presentation", values)
    return coords


def _fit_reductions(model, stimuli, layers, iterations, eta, reduce: Reduce, shapes, device,
                    batch_size, bf16: bool) -> dict[str, Projection]:
    big = [n for n in layers if n not in ("logits", "probabilities")
           and int(np.prod(shapes[n])) > reduce.min_size]
    if not big:
        return {}
    if reduce.method == "random":
        return {n: random_projection(int(np.prod(shapes[n])), reduce.components, reduce.seed)
                for n in big}
    rows = np.arange(min(len(stimuli), 500))
    gathered: dict[str, list[np.ndarray]] = {n: [] for n in big}
    for start in range(0, len(rows), batch_size):
        images = render(stimuli, rows[start:start + batch_size], model.input_shape[0],
                        model.input_shape[1], model).to(device)
        arrays = trace_arrays(model, images, big, iterations, eta, feedback=False, bf16=bf16)
        for n in big:
            gathered[n].append(arrays[n].reshape(-1, arrays[n].shape[-1]))
    return {n: fit_pca(torch.from_numpy(np.concatenate(gathered[n])), reduce.components)
            for n in big}


def stimulus_digest(stimuli: StimulusSet) -> str:
    """sha256 of a stimulus set as extraction reads it: the metadata (every column, rows in
    order: ids, perturbation kinds and levels), the perturbation seed and the source images
    (the tensor in memory, or each file's bytes)."""
    digest = hashlib.sha256(stimuli.metadata.to_csv(index=False).encode())
    digest.update(str(stimuli.seed).encode())
    if stimuli.images is not None:
        digest.update(stimuli.images.contiguous().numpy().tobytes())
    for path in stimuli.paths or []:
        digest.update(file_digest(path).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class ExtractOptions:
    """What :func:`extract` takes besides the model, the stimuli and the output path.

    ``layers`` to ``checkpoint_sha256`` decide what is computed: with the digests of the model
    and of the stimuli they make the fingerprint (:meth:`fingerprint`) that a resumed extraction
    must match and that the finished store records; the fields below them say how it runs.
    """

    layers: list[str] | tuple[str, ...] | None = None  # None: every tap and every output
    iterations: int | None = None  # T (None: the model's)
    eta: float | None = None  # the step size (None: the model's)
    feedback: bool = True  # also store <tap>_feedback
    time_bins: TimeBins | None = None  # iteration -> ms (None: TimeBins())
    reduce: Reduce | None = None
    halt: float | None = None  # adaptive halting tolerance (iterations is then the cap)
    dtype: str = "float32"  # storage type: 'float32' or 'float16'
    bf16: bool = False  # the model computes under bfloat16 autocast (opt-in; CUDA or CPU)
    model_id: str = "model"
    checkpoint_sha256: str | None = None  # the model's identity (None: a digest of its tensors)
    batch_size: int = 64
    progress: bool = True
    max_batch_mb: float = MAX_BATCH_MB
    restart_if_changed: bool = False
    strict: bool = False  # StimulusError instead of converting stimuli to the model's input
    shard: Shard | str | None = None  # None: the whole set; 'init', a Shard or 'merge' (Zarr)

    def fingerprint(self, model: FeedbackModel, stimuli: StimulusSet) -> dict:
        """The settings of this extraction of ``stimuli`` by ``model`` (layers and iterations
        resolved), as a partial store and the finished store's attrs record them."""
        return dict(model_id=self.model_id,
                    model_sha256=self.checkpoint_sha256 or model_digest(model),
                    stimulus_set=stimuli.identifier, stimuli=stimulus_digest(stimuli),
                    n=len(stimuli), layers=resolve_layers(model, self.layers),
                    iterations=resolve_iterations(model, self.iterations),
                    eta=self.eta if self.eta is not None else model.eta, feedback=self.feedback,
                    reduce=None if self.reduce is None else vars(self.reduce),
                    time_bins=vars(self.time_bins or TimeBins()), dtype=self.dtype,
                    **({} if self.halt is None else {"halt": self.halt}),
                    **({"bf16": True} if self.bf16 else {}))


def extract(model: FeedbackModel, stimuli: StimulusSet, out: str | os.PathLike,
            options: ExtractOptions | None = None, **changes: Any) -> Path:
    """Extract activations to ``out`` (.nc or .zarr), batch by batch; resumes if interrupted.

    ``options`` (default ``ExtractOptions()``) with any of its fields given as keywords
    (``extract(model, stimuli, out, layers=["conv2"], iterations=4)``).

    Stimuli of another size than the model's, or colour stimuli for a greyscale model, are
    converted with a ConversionWarning naming the conversion (``strict``: StimulusError).

    ``halt``: adaptive halting tolerance (see ``CNNF.forward``); ``iterations`` is then the cap.
    ``dtype``: storage type of every variable, 'float32' or 'float16' (half the bytes; values
    rounded to float16, relative error <= 2^-11; recorded in ``attrs['dtype']``). The model
    computes in its own dtype either way, unless ``bf16`` (an opt-in: bfloat16 autocast of the
    model's passes, faster on GPUs and CPUs with bfloat16 units; activations then differ from
    float32 by about 1e-2 relative, and the stores' fingerprint records it). Each batch is
    written on a background thread while the next one computes, as bytes into the store's
    files (uncompressed: Zarr chunks of one batch, NetCDF variables contiguous), each byte
    written once; in Zarr, a layer computed once (an encoder tap) is written once, the chunk
    files of its other iterations hard links of the first, and feedback's iteration 0 (NaN,
    the arrays' fill value) is not written at all.

    ``shard`` spreads one Zarr extraction over processes (SLURM jobs): ``'init'`` creates the
    partial store (arrays full-size, reductions fitted, nothing computed), ``Shard(i, n)``
    writes its chunk-aligned region of it (resumable per shard; the store must be initialised;
    returns the partial store's path) and ``'merge'`` renames the store to ``out`` once every
    shard is done (StoreError naming the missing presentations otherwise). Batches fall on the
    same chunks as in one process, so the store is bit-identical to a one-process extraction.

    While it runs, ``<out>.lock`` names the process writing ``out``; a second writer fails at
    once (LockError). Batches go to ``<out>.partial`` (see ``store``): a rerun after a kill
    continues where it stopped, and is refused (StoreError, partial store untouched) if the
    model, stimuli (ids, order, perturbations), layers, iterations, eta, reduction or time bins
    differ (``restart_if_changed``: it is deleted and extraction starts over). A batch holds at
    most ``max_batch_mb`` MiB of unreduced activations (``batch_size`` is lowered to fit; every
    model call is one batch), so peak memory is bounded whatever the number of stimuli and the
    batch size asked for (a PCA also holds the features of the <= 500 images it is fitted on).
    Returns the path of the finished store.
    """
    unknown = sorted(set(changes) - {f.name for f in fields(ExtractOptions)})
    if unknown:
        raise TypeError(f"extract() got unknown option(s) {unknown}; the options are the "
                        f"fields of ExtractOptions")
    options = replace(options or ExtractOptions(), **changes)
    layers, iterations, eta, feedback, time_bins, reduce, halt, dtype, batch_size = (
        options.layers, options.iterations, options.eta, options.feedback, options.time_bins,
        options.reduce, options.halt, options.dtype, options.batch_size)
    out = Path(out)
    store_format(out)  # a bad suffix fails before any work
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if len(stimuli) == 0:
        raise ValueError(f"stimulus set {stimuli.identifier!r} is empty")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch size must be an integer >= 1, got {batch_size!r}")
    if store_format(out) == "netcdf" and out.is_dir():
        raise StoreError(f"{out} is a folder; a .nc output is one file: give another path")
    if halt is not None and not supports_halting(model):
        raise ValueError(f"adaptive halting (halt) is a CNN-F feature; "
                         f"{model.config.get('arch', type(model).__name__)} runs a fixed number "
                         "of iterations: leave halt out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create the folder of {out}: {error.strerror}") from None
    if not os.access(out.parent, os.W_OK):
        raise StoreError(f"cannot write to {out.parent}: permission denied")
    time_bins = time_bins or TimeBins()
    names = resolve_layers(model, layers)
    iterations = resolve_iterations(model, iterations)
    if reduce is not None and reduce.method == "pca":
        _check_pca_rows(reduce, min(len(stimuli), 500) * (iterations + 1))
    device = next(model.parameters()).device
    model.eval()
    channels, size = model.input_shape[0], model.input_shape[1]
    input_conversion(stimuli, channels, size, options.strict)
    settings = options.fingerprint(model, stimuli)
    shard = _check_shard(options.shard, out)
    with output_lock(_lock_target(out, shard)):
        if shard is None or shard == "init":
            store = PartialStore.resume(out, settings, options.restart_if_changed)
        else:
            store = _initialised(out, settings, shard)
            if store is None:
                return out
            if shard == "merge":
                return store.finish()
        first_image = render(stimuli, np.array([0]), channels, size, model).to(device)
        with eagerly(model):  # one image: not worth compiling for
            probe = trace_arrays(model, first_image, names, iterations, eta, feedback, halt,
                                 options.bf16)
            shapes = _feature_shapes(model, first_image, names)
        per_image = sum(array.nbytes for array in probe.values())
        # a chunk (and batch) of at most the set's size: a small set is not padded to 64
        fitting = int(options.max_batch_mb * 2**20) // per_image
        chunk = store.chunk if store else max(1, min(batch_size, len(stimuli), fitting))
        if store is not None:
            reductions = from_arrays(store.extras, reduce.method) if reduce else {}
        else:
            reductions = _fit_reductions(model, stimuli, names, iterations, eta, reduce, shapes,
                                         device, chunk, options.bf16) if reduce else {}
        variables = {var: (_dims(var), DTYPES[dtype]) for var in probe}
        # Zarr chunks by iteration: a layer computed once (stored once) and feedback (NaN at
        # iteration 0: not stored there; laid out by iteration, each chunk written uncopied)
        feedback_by_iteration = store_format(out) == "zarr"
        chunked_by_iteration = frozenset(
            var for var, array in probe.items()
            if var.endswith("_feedback") or (repeated_block(array) is not None
                                             and var not in reductions))
        skeleton = _skeleton(model, stimuli, names, probe, shapes, reductions, settings,
                             time_bins)
        if store is None:
            store = PartialStore.create(out, skeleton, variables, chunk, settings,
                                        to_arrays(reductions), chunked_by_iteration)
        if shard == "init":
            return store.partial
        rows, region = np.arange(len(stimuli)), store.region
        with tqdm(total=len(region), initial=store.done - region.start, unit="img",
                  desc=f"extract {out.name}" + (f" shard {shard}" if shard else ""),
                  disable=not options.progress) as bar, BatchWriter(store) as writer:
            for start in range(store.done, region.stop, store.chunk):
                batch = rows[start:start + store.chunk]
                images = render(stimuli, batch, channels, size, model).to(device)
                arrays = trace_arrays(model, images, names, iterations, eta, feedback, halt,
                                      options.bf16, feedback_by_iteration=feedback_by_iteration)
                _check_finite(arrays, stimuli, batch)
                for var, array in arrays.items():
                    base = var.removesuffix("_feedback")
                    if base in reductions:
                        flat = torch.from_numpy(np.ascontiguousarray(array))
                        arrays[var] = reductions[base](flat.reshape(-1, array.shape[-1])
                                                       ).reshape(len(batch), iterations + 1,
                                                                 -1).numpy()
                writer.put(start, {var: _stored(array, DTYPES[dtype])
                                   for var, array in arrays.items()})
                bar.update(len(batch))
        return store.partial if shard else store.finish()


def _check_shard(shard: Shard | str | None, out: Path) -> Shard | str | None:
    """``shard`` checked: ValueError for an unknown mode, StoreError for a NetCDF path."""
    if shard is None:
        return None
    if not isinstance(shard, Shard) and shard not in ("init", "merge"):
        raise ValueError(f"shard must be 'init', 'merge' or a Shard, got {shard!r}")
    if store_format(out) != "zarr":
        raise StoreError(f"a sharded extraction writes one Zarr store: give a .zarr path, "
                         f"not {out}")
    return shard


def _lock_target(out: Path, shard: Shard | str | None) -> Path:
    """The path whose lock a writer holds: a shard's own, else ``out``'s."""
    if isinstance(shard, Shard):
        return out.with_name(f"{out.name}.shard-{shard.index}-of-{shard.count}")
    return out


def _initialised(out: Path, settings: dict, shard: Shard | str) -> PartialStore | None:
    """The initialised partial store a shard writes or a merge finishes (None: ``out`` is
    finished already); StoreError if there is none."""
    store = PartialStore.resume(out, settings, shard=shard if isinstance(shard, Shard) else None)
    if store is None and not out.exists():
        raise StoreError(f"{partial_path(out)} does not exist: initialise the store first "
                         "(extract --shard init, with the same options)")
    return store


def _check_pca_rows(reduce: Reduce, rows: int) -> None:
    """ValueError when a PCA would keep fewer components than asked for: it is fitted on
    ``rows`` = reference stimuli x iterations."""
    if rows < reduce.components:
        raise ValueError(f"pca:{reduce.components} needs at least {reduce.components} reference "
                         f"rows (stimuli x iterations, of the first 500 stimuli); this set gives "
                         f"{rows}: ask for pca:{rows} or fewer, or random:{reduce.components}")


def _check_finite(arrays: dict[str, np.ndarray], stimuli: StimulusSet, batch: np.ndarray
                  ) -> None:
    """StoreError naming the first variable with NaN or inf values in one batch (the NaNs
    that mean 'none' are allowed: iteration 0 of feedback, logit change and mask flips, and
    mask flips of a model without masks), before anything of the batch is written."""
    for var, array in arrays.items():
        if var in SCALARS[1:] or var == "halted_at":
            continue
        values = array[:, 1:] if var.endswith("_feedback") else array
        block = repeated_block(values)
        values = values if block is None else block  # a layer computed once: its one copy
        total = torch.from_numpy(values).sum() if values.flags.writeable else values.sum()
        if np.isfinite(float(total)):  # NaN and inf reach the sum; a finite sum that
            continue  # overflows is checked value by value below
        bad = ~np.isfinite(values).reshape(len(batch), -1).all(1)
        if bad.any():
            ids = stimuli.metadata["stimulus_id"].to_numpy()[batch[bad]]
            raise StoreError(f"non-finite (NaN or inf) activations in {var} for {int(bad.sum())} "
                             f"of {len(batch)} images of the batch at presentation {batch[0]} "
                             f"(first: stimulus {ids[0]!r}): the model overflows on these "
                             "inputs; nothing of this batch was written")


def _stored(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` in the storage ``dtype``; a block repeated along the iteration axis stays one
    (only the block is converted)."""
    block = repeated_block(array)
    if block is None:
        return array.astype(dtype, copy=False)
    return np.broadcast_to(block.astype(dtype, copy=False), array.shape)


def _feature_shapes(model: FeedbackModel, image: torch.Tensor, names: list[str]
                    ) -> dict[str, tuple]:
    """Feature shape (C, H, W) or (D,) of each requested layer and output."""
    with torch.no_grad():
        trace = model(image, iterations=0, layers=[n for n in names if n in model.taps])
    shapes = {n: tuple(trace.forward[n][0].shape[1:]) for n in names if n in model.taps}
    shapes.update({"h_hat": tuple(trace.h.shape[1:]), "logits": (model.num_classes,),
                   "probabilities": (model.num_classes,)})
    return shapes


def _dims(var: str) -> tuple[str, ...]:
    if var == "halted_at":
        return ("presentation",)
    if var in SCALARS:
        return ("presentation", "iteration")
    return ("presentation", "iteration", f"neuroid_{var.removesuffix('_feedback')}")


def _skeleton(model: FeedbackModel, stimuli: StimulusSet, names: list[str], probe: dict,
              shapes: dict, reductions: dict[str, Projection], settings: dict,
              time_bins: TimeBins) -> xr.Dataset:
    """Coords and attrs of the activation dataset (no data variables)."""
    from neurocnnf.version import __version__

    iterations = settings["iterations"]
    coords = _metadata_coords(stimuli)
    coords.update({"iteration": ("iteration", np.arange(iterations + 1)),
                   "time_bin_start": ("iteration", time_bins.starts(iterations)),
                   "time_bin_end": ("iteration", time_bins.ends(iterations))})
    for n in names:
        coords.update(_neuroid_coords(n, (reductions[n].size,) if n in reductions else shapes[n]))
    channels, size = model.input_shape[0], model.input_shape[1]
    return xr.Dataset(coords=coords, attrs={
        "model_id": settings["model_id"], "checkpoint_sha256": settings["model_sha256"],
        "model_config": json.dumps(model.config), "iterations": iterations,
        "eta": float("nan") if settings["eta"] is None else settings["eta"],  # NaN: not CNN-F
        "layers": json.dumps([v for v in probe if v not in (*SCALARS, "halted_at")]),
        "stimulus_set": stimuli.identifier, "conversion": conversion_note(stimuli, channels, size),
        "input_shape": json.dumps(list(model.input_shape)),
        "normalisation": json.dumps(input_normalisation(model)),
        "time_bins": json.dumps(vars(time_bins)), "package_version": __version__,
        "reduction": json.dumps(settings["reduce"]), "dtype": settings["dtype"],
        FINGERPRINT: json.dumps(settings, sort_keys=True),
    })


def extract_dataset(model: FeedbackModel, stimuli: StimulusSet, path: str | os.PathLike,
                    **kwargs) -> xr.Dataset:
    """``extract`` then open the result."""
    return open_activations(extract(model, stimuli, path, **kwargs))
