"""The CNN-F iteration engine (Algorithm 1 with the online update, eqs. 6-7)."""

from __future__ import annotations

import contextlib
import functools
import numbers
import os
import warnings
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, get_args

import torch
from torch import Tensor, nn

from neurocnnf.models.protocol import Call, FeedbackMode, check_iterations, resolve_iterations
from neurocnnf.models.trace import Trace
from neurocnnf.nn import AdaPool, AdaReLU, FeedbackSequential, InferenceState, Tap
from neurocnnf.nn.functional import online_update

FEEDBACK_MODES: tuple[str, ...] = get_args(FeedbackMode)


class CNNF(nn.Module):
    """A CNN with recurrent generative feedback.

    ``encoder`` maps the image x to h, the features at layer k (run once, plain CNN).
    ``body`` maps h to logits; its ``feedback`` maps logits back down to g(k).
    ``iterations`` (T) and ``eta`` are defaults that each call may override: with T = 0 the
    model is exactly the plain CNN with ReLU and max-pooling.

    ``recurrent=False`` makes the ablation twin of CNN-F: the generative (feedback) pass still
    runs from the plain pass's logits every iteration, so training scores the same
    reconstruction losses, but its output never enters the forward pass: h_hat stays h and
    every iteration's logits are the plain pass's (the generative loss as a regulariser, no
    recurrence). It is stored in ``config`` (``recurrent: false``) when off.

    ``config`` holds the builder arguments, so that a checkpoint can rebuild the model.
    ``reconstruction_taps`` names the body taps used by the intermediate reconstruction loss.

    ``compiled``: when True, the encoder pass and the T iterations run through
    ``torch.compile`` (inductor fuses the elementwise norm/mask/update work between the
    convolutions). The first call of each input shape, T, ``layers`` and grad mode compiles
    (tens of seconds to minutes on a 2-core CPU with a cold cache); inductor's cache persists
    across runs (``inductor_cache_dir``), so a second run only traces. Results equal the eager
    engine's to float rounding. Whether it pays depends on the architecture and T (on a 2-core
    CPU VGG-6's CNN-F gains, the plain twins lose; ``train.loop.COMPILE_BREAK_EVEN_STEPS``
    and benchmarks/README.md have the measurements; on a GPU every CNN-F setting gains). A batch
    smaller than one already compiled and of a size not compiled yet (the last, partial batch
    of an epoch or a stimulus set) runs eagerly instead of compiling again; adaptive halting
    always runs eagerly.
    """

    compiled: bool = False

    def __init__(
        self,
        encoder: FeedbackSequential,
        body: FeedbackSequential,
        input_shape: tuple[int, int, int],
        num_classes: int,
        reconstruction_taps: tuple[str, ...],
        config: dict[str, Any],
        iterations: int = 1,
        eta: float = 0.1,
        recurrent: bool = True,
    ) -> None:
        super().__init__()
        self.encoder, self.body = encoder, body
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.reconstruction_taps = reconstruction_taps
        self.config = dict(config)
        self.recurrent = bool(recurrent)
        if not self.recurrent:
            self.config["recurrent"] = False
        self.iterations, self.eta = check_iterations(iterations), _check_eta(eta)
        self.compiled_batches: set[int] = set()  # batch sizes the compiled path has taken
        for name, module in self.named_modules():
            if isinstance(module, AdaReLU | AdaPool):
                module.latent_name = name
        self.encoder_taps = tuple(m.name for m in encoder.modules() if isinstance(m, Tap))
        self.body_taps = tuple(m.name for m in body.modules() if isinstance(m, Tap))
        unknown = sorted(set(reconstruction_taps) - set(self.body_taps))
        if unknown:
            raise ValueError(f"reconstruction taps {unknown} are not body taps of this model "
                             f"{list(self.body_taps)}")

    @property
    def taps(self) -> tuple[str, ...]:
        """All read-out layer names, bottom to top."""
        return self.encoder_taps + self.body_taps

    @property
    def feedback_taps(self) -> tuple[str, ...]:
        """The taps that receive g_t(l) every iteration: the body taps."""
        return self.body_taps

    def forward(self, x: Tensor, *, halt: float | None = None,
                max_iterations: int | None = None, **options: Any) -> Trace:
        """Run T iterations of feedback and feedforward on images ``x``.

        x: (N, C, H, W) float images in pixel scale [0, 1].
        options: the keyword arguments of every FeedbackModel call (:class:`Call`): iterations
            (T, default: the model's), eta (step size, default: the model's), layers (taps
            whose f_t(l), g_t(l) to keep; None keeps all, () none), mask_stats, decode,
            feedback (the ablations of the logits that enter the generative pass: 'zero'
            replaces them by zeros, 'shuffle' by another image's).
        halt: adaptive halting tolerance (None: every image runs all T iterations). Each image
            stops at the first iteration t >= 1 whose relative logit change
            ||z_t - z_(t-1)|| / ||z_(t-1)|| is below ``halt`` (the criterion of
            ``analysis.difficulty.settling_iteration``) and leaves the batch, so later passes
            run on the remaining images only. ``trace.halted_at`` (N,) holds each image's
            stopping iteration (T for images that never settle); the trace keeps T + 1 entries,
            a halted image repeating its last state (its mask-flip fractions are 0).
            halt=0 runs every image for T iterations. With feedback='shuffle', images are
            paired among those still running.
        max_iterations: the cap T when halting (an alias of ``iterations``; give one of them).

        Memory: the returned Trace keeps, for all N images at once, h, the logits, h_hat_t and
        g_t(k) of every iteration, plus f_t(l) and g_t(l) of every tap in ``layers``:
        layers=None keeps every layer x iteration (fmnist_small: ~0.14 MB per image per
        iteration, ~0.74 MB per image at T = 4; layers=() ~0.05 MB). Call large sets in
        chunks (``activations.extract`` bounds each call to ``max_batch_mb``).
        """
        call = Call(**options)
        iterations, eta, layers, feedback = call.iterations, call.eta, call.layers, call.feedback
        if halt is None and max_iterations is not None:
            raise ValueError("max_iterations caps adaptive halting: pass halt=tolerance too, or "
                             "use iterations=T for a fixed number of iterations")
        if max_iterations is not None and iterations is not None:
            raise ValueError("give iterations or max_iterations, not both")
        iterations = resolve_iterations(self, iterations if max_iterations is None
                                        else max_iterations)
        step_size = self.eta if eta is None else _check_eta(eta)
        tolerance = None if halt is None else check_tolerance(halt)
        self.check_input(x)
        check_feedback_mode(feedback)
        check_layers(layers, self.taps)
        state = InferenceState(eta=step_size, record=layers, mask_stats=call.mask_stats)
        if tolerance is not None and len(x):  # (an empty batch has nothing to halt)
            h = encode(self, x, state, iterations, call.decode)
            return self._halting(x, h, state, iterations, tolerance, feedback, call.decode)
        run = compiled(unroll) if runs_compiled(self, len(x)) else unroll
        h, logits, h_hat, reconstruction = run(self, x, state, iterations, feedback, call.decode)
        forward = {
            name: values * (iterations + 1) if name in self.encoder_taps else values
            for name, values in state.forward.items()
        }
        decoded = [self._to_pixels(x, state) for x in h_hat] if call.decode else []
        halted_at = None if tolerance is None else torch.zeros(0, dtype=torch.long,
                                                               device=x.device)
        return Trace(logits, h, h_hat, reconstruction, forward, state.feedback, state.mask_flips,
                     decoded, halted_at)

    def _iterate(self, logits: Tensor, h_hat: Tensor, state: InferenceState,
                 feedback: FeedbackMode) -> tuple[Tensor, Tensor, Tensor]:
        """One iteration: feedback from ``logits`` (g(k)), eq. 6 update of h_hat, forward pass
        (the ablation twin, ``recurrent=False``: the feedback alone; h_hat and logits stay)."""
        g_k = self.body.feedback(mix_feedback(logits, feedback), state)
        if not self.recurrent:
            return g_k, h_hat, logits
        h_next = online_update(h_hat, g_k, state.eta)
        return g_k, h_next, self.body(h_next, state)

    def _halting(self, x: Tensor, h: Tensor, state: InferenceState, iterations: int,
                 tolerance: float, feedback: FeedbackMode, decode: bool) -> Trace:
        """The iterations with per-image halting and batch compaction (see ``forward``)."""
        n = x.shape[0]
        running = torch.arange(n, device=x.device)  # batch rows still iterating
        rows = [running]  # rows[t]: the images computed in forward pass t
        halted_at = torch.full((n,), iterations, dtype=torch.long, device=x.device)
        logits, h_hat, reconstruction = [self.body(h, state)], [h], []
        z, h_now = logits[0], h
        for t in range(1, iterations + 1):
            if not len(running):
                break
            g_k, h_now, z_next = self._iterate(z, h_now, state, feedback)
            reconstruction.append(g_k)
            h_hat.append(h_now)
            logits.append(z_next)
            rows.append(running)
            stop = relative_logit_change(z_next, z) < tolerance
            z = z_next
            if t < iterations and bool(stop.any()):
                halted_at[running[stop]] = t
                keep = torch.nonzero(~stop).flatten()
                running, z, h_now = running[keep], z[keep], h_now[keep]
                keep_rows(state, self.body, keep)
        after = rows[1:]  # feedback pass t-1 and the mask flips of pass t use rows[t]
        forward = {
            name: values * (iterations + 1) if name in self.encoder_taps
            else rectangular(values, rows, n, iterations + 1)
            for name, values in state.forward.items()
        }
        h_hat = rectangular(h_hat, rows, n, iterations + 1)
        decoded = [self._to_pixels(x, state) for x in h_hat] if decode else []
        return Trace(
            rectangular(logits, rows, n, iterations + 1), h, h_hat,
            rectangular(reconstruction, after, n, iterations),
            forward,
            {name: rectangular(v, after, n, iterations) if name in self.body_taps else v
             for name, v in state.feedback.items()},  # encoder taps: from decode, whole batch
            {name: rectangular(v, after, n, iterations, repeat=False)
             for name, v in state.mask_flips.items()},
            decoded, halted_at,
        )

    def _to_pixels(self, features: Tensor, state: InferenceState) -> Tensor:
        """Features at layer k -> pixel scale through the encoder's transposed layers."""
        normalize, *layers = self.encoder.layers
        for layer in reversed(layers):
            features = layer.feedback(features, state)
        return features * normalize.std + normalize.mean

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error for images this model cannot take."""
        check_images(x, self.input_shape, self.config.get("arch", "model"),
                     next(self.parameters()).dtype)


def encode(model: CNNF, x: Tensor, state: InferenceState, iterations: int, decode: bool
           ) -> Tensor:
    """h, the encoder's features of images ``x`` (N, C, H, W). Its latent layers keep their
    masks and indices only for ``decode`` (the one feedback pass through the encoder), and
    the body's only for ``iterations`` > 0 (``InferenceState.latents``)."""
    state.latents = decode
    h = model.encoder(x, state)
    state.latents = iterations > 0
    return h


def unroll(model: CNNF, x: Tensor, state: InferenceState, iterations: int, feedback: FeedbackMode,
           decode: bool = False) -> tuple[Tensor, list[Tensor], list[Tensor], list[Tensor]]:
    """The encoder pass and T = ``iterations`` iterations of ``model`` on images ``x`` (N, C, H, W).

    Returns h, logits (iterations + 1 of (N, classes)), h_hat (iterations + 1 like h) and the
    reconstructions g_t(k) (iterations like h); taps and mask flips are recorded in ``state``.
    ``decode``: the encoder keeps its latents for carrying h_hat to pixels (``encode``).
    Without autograd the body's latents are dropped from it at the end: in a compiled graph each
    one left there is an output written to memory. With autograd they stay (the backward keeps
    them anyway; dropped, a compiled training step ran slower on a CPU).
    """
    h = encode(model, x, state, iterations, decode)
    logits, h_hat, reconstruction = [model.body(h, state)], [h], []
    for _ in range(iterations):
        g_k, h_next, z = model._iterate(logits[-1], h_hat[-1], state, feedback)
        reconstruction.append(g_k)
        h_hat.append(h_next)
        logits.append(z)
    if not torch.is_grad_enabled():
        state.forget(model.body.modules())  # no later pass reads them (decoding: the encoder's)
    return h, logits, h_hat, reconstruction


RECOMPILE_LIMIT = 64  # graphs of one compiled function per process (dynamo's default: 8)


@functools.cache
def compiled(fn: Callable) -> Callable:
    """``fn`` (a model's whole pass: ``unroll``, ``predictive.settle``) through
    ``torch.compile``, made once per process and function on first use, with inductor's caches
    in ``inductor_cache_dir()``. Each model, T and grad mode is one more graph of the same
    function, so dynamo's recompile limit is raised to ``RECOMPILE_LIMIT``: at its default (8) a
    process that compiled a few models fell back to eager without a word."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
    dynamo = torch._dynamo.config
    dynamo.recompile_limit = max(dynamo.recompile_limit, RECOMPILE_LIMIT)
    return torch.compile(fn, dynamic=False)


def runs_compiled(model: nn.Module, batch: int) -> bool:
    """Whether a call of ``batch`` images of ``model`` runs compiled: ``model.compiled`` and a
    size compiled before, or one larger than all of them (a new full batch); a smaller new
    size runs eagerly, as a recompile for one partial batch would cost more than it saves.
    The sizes taken are kept in ``model.compiled_batches``."""
    if not model.compiled:
        return False
    sizes = model.compiled_batches
    if batch in sizes or batch > max(sizes, default=0):
        sizes.add(batch)
        return True
    return False


def inductor_cache_dir() -> Path:
    """Where compiled kernels and graphs are kept between runs: ``TORCHINDUCTOR_CACHE_DIR``
    when set, else ``$XDG_CACHE_HOME/neurocnnf/torchinductor`` (``~/.cache/...``), which
    outlives the run and the machine's /tmp (torch's default, often wiped per job)."""
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "neurocnnf" / "torchinductor"


@contextlib.contextmanager
def eagerly(model: nn.Module) -> Iterator[None]:
    """Within the block, ``model`` runs its eager path even when ``compiled`` (one-image
    probes, not worth a compilation); models without a compiled path pass through."""
    compiled = getattr(model, "compiled", False)
    if compiled:
        model.compiled = False
    try:
        yield
    finally:
        if compiled:
            model.compiled = True


class InputRangeWarning(UserWarning):
    """Images far outside the pixel scale [0, 1] the models are trained on."""


RANGE_SLACK = 0.5  # how far outside [0, 1] a batch may reach before the warning


def check_images(x: Tensor, input_shape: tuple[int, int, int], arch: str,
                 dtype: torch.dtype = torch.float32) -> None:
    """The one check of model input: raise a clear error unless ``x`` is a finite batch
    (N, *input_shape) of the model's float ``dtype``; warn (once per call site,
    :class:`InputRangeWarning`) when it reaches further than ``RANGE_SLACK`` outside [0, 1]."""
    c, hgt, wid = input_shape
    expected = f"(N, {c}, {hgt}, {wid})"
    if not isinstance(x, Tensor):
        raise TypeError(f"images must be a torch.Tensor {expected}, got {type(x).__name__}")
    if x.dim() == 3 and tuple(x.shape) == tuple(input_shape):
        raise ValueError(f"images must be a batch {expected}; add a batch dim: x[None]")
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(f"{arch} expects images {expected}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"images must be float in [0, 1], got {x.dtype} (divide uint8 by 255)")
    if x.dtype != dtype:
        raise TypeError(f"images must be {dtype} like the model's weights, got {x.dtype} "
                        f"(convert with x.to({dtype}))")
    if x.numel():
        low, high = torch.aminmax(x.detach())  # NaN if any is NaN: one pass checks both
        if not bool(torch.isfinite(low) & torch.isfinite(high)):
            raise ValueError("images contain NaN or infinite values")
        if low < -RANGE_SLACK or high > 1 + RANGE_SLACK:
            warnings.warn("images lie far outside the pixel scale [0, 1] the models expect "
                          "(uint8: divide by 255; do not normalize): results are meaningless",
                          InputRangeWarning, stacklevel=4)


def check_layers(layers: Collection[str] | None, taps: tuple[str, ...]) -> None:
    """Raise a clear error for requested tap names the model does not have (None: all), and
    for one name given as a string instead of a list of names."""
    if isinstance(layers, str):
        raise TypeError(f"layers must be a list of names, not the string {layers!r} "
                        f"(write [{layers!r}])")
    unknown = set(layers or ()) - set(taps)
    if unknown:
        raise ValueError(f"unknown layer(s) {sorted(unknown)}; this model has {taps}")


def check_feedback_mode(mode: str) -> None:
    if mode not in FEEDBACK_MODES:
        raise ValueError(f"unknown feedback mode {mode!r}; use one of {FEEDBACK_MODES}")


def mix_feedback(signal: Tensor, mode: FeedbackMode) -> Tensor:
    """A top-down signal (N, ...) as an ablation asks: intact, zeroed, or shuffled across images.

    'shuffle' gives every image the signal of another image of the batch (a fixed derangement,
    the same on every call and iteration, so results are reproducible).
    """
    check_feedback_mode(mode)
    if mode == "zero":
        return torch.zeros_like(signal)
    if mode == "shuffle":
        return signal[derangement(signal.shape[0]).to(signal.device)]
    return signal


def derangement(n: int, seed: int = 0) -> Tensor:
    """A permutation of range(n) with no fixed point (n >= 2; identity for n = 1)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    fixed = torch.nonzero(perm == torch.arange(n)).flatten()
    while n > 1 and len(fixed):  # each swap removes at least one fixed point
        i = int(fixed[0])
        j = (i + 1) % n
        perm[[i, j]] = perm[[j, i]]
        fixed = torch.nonzero(perm == torch.arange(n)).flatten()
    return perm


def relative_logit_change(new: Tensor, old: Tensor) -> Tensor:
    """||new - old|| / ||old|| per image, (N, classes) -> (N,): the settling criterion."""
    return (new - old).norm(dim=1) / old.norm(dim=1).clamp_min(1e-12)


def keep_rows(state: InferenceState, module: nn.Module, keep: Tensor) -> None:
    """Compact the per-call latents of ``module`` and its children to the batch rows ``keep``.

    Every tensor a layer keeps in its state slot (masks, pooling indices, remembered
    feedback) has the batch as its first dimension.
    """
    for child in module.modules():
        slot = state.slot(child)
        for key, value in slot.items():
            if isinstance(value, Tensor):
                slot[key] = value[keep]


def rectangular(entries: list[Tensor], rows: list[Tensor], n: int, length: int,
                repeat: bool = True) -> list[Tensor]:
    """Per-pass tensors of the images still running -> ``length`` tensors (n, ...).

    ``entries[t]`` holds the batch rows ``rows[t]``; an image no longer computed repeats its
    last value (``repeat``) or is 0. Entry 0 covers the whole batch.
    """
    out: list[Tensor] = []
    for t in range(length):
        if t < len(entries) and entries[t].shape[0] == n:
            out.append(entries[t])
            continue
        before = out[-1] if repeat else torch.zeros_like(out[-1])
        out.append(before.index_copy(0, rows[t], entries[t]) if t < len(entries) else before)
    return out


def check_tolerance(tolerance: float) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) \
            or not float(tolerance) >= 0:
        raise ValueError(f"halt must be a tolerance >= 0 (relative logit change), got "
                         f"{tolerance!r}")
    return float(tolerance)


def _check_eta(eta: float) -> float:
    if not 0.0 < float(eta) <= 1.0:
        raise ValueError(f"eta must be in (0, 1], got {eta!r}")
    return float(eta)
