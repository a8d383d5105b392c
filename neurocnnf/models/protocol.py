"""The model interface every engine implements (CNN-F, the predictive-coding comparator, a
``from_backbone`` model): what attacks, extraction, Brain-Score and the analyses may rely on.

Code downstream of the models is typed against :class:`FeedbackModel`, never against one engine.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol, runtime_checkable

from torch import Tensor

from neurocnnf.models.trace import Trace

FeedbackMode = Literal["intact", "zero", "shuffle"]


@dataclass(frozen=True)
class Call:
    """The keyword arguments every :class:`FeedbackModel` call takes, with their defaults: the
    one definition of the call, which each engine's ``forward`` reads (``Call(**options)``).

    iterations: T (None: the model's own, see :func:`resolve_iterations`).
    eta: the step size (None: the model's); engines without one reject a value.
    layers: taps whose per-iteration activations the trace keeps (None: all, (): none).
    mask_stats: also record the fraction of latent units flipping per iteration.
    decode: also carry each h_hat_t down to pixel space (``Trace.decoded``).
    feedback: 'intact', or an ablation of the top-down signal: 'zero' or 'shuffle'.
    """

    iterations: int | None = None
    eta: float | None = None
    layers: Collection[str] | None = ()
    mask_stats: bool = False
    decode: bool = False
    feedback: FeedbackMode = "intact"


CALL_OPTIONS = frozenset(field.name for field in fields(Call))


@runtime_checkable
class FeedbackModel(Protocol):
    """An iterative image model: ``model(x)`` runs T iterations and returns their Trace.

    Engines are ``torch.nn.Module`` subclasses: downstream code also uses ``parameters()``,
    ``state_dict()``, ``eval()`` and ``to()``.

    Attributes:
        input_shape: (C, H, W) of the images it takes (float, pixel scale [0, 1]).
        num_classes: width of the logits.
        iterations: T used when a call gives none (0 = the plain feedforward pass).
        eta: the step size used when a call gives none (CNN-F's online update, eq. 6); None for
            an engine whose dynamics have no step size (they are then set in ``config``).
        config: the architecture's settings, enough to rebuild it (``arch`` names the
            architecture in :mod:`neurocnnf.models.registry`); saved in checkpoints.
        encoder_taps / body_taps: read-out layer names, bottom to top, of the layers computed
            once (their ``Trace.forward`` repeats iteration 0) / that change across iterations.
        taps: encoder_taps + body_taps.
        feedback_taps: the taps that receive a top-down signal every iteration
            (``Trace.feedback[l][t]``, t = 0..T-1).
        reconstruction_taps: the feedback taps whose signal the intermediate reconstruction
            loss pulls toward the layer's first forward pass (training).

    Optional capability: adaptive halting, ``model(x, halt=tol, max_iterations=T)`` (CNN-F);
    :func:`supports_halting` tells whether an engine takes it.
    """

    input_shape: tuple[int, int, int]
    num_classes: int
    iterations: int
    eta: float | None
    config: dict[str, Any]
    encoder_taps: tuple[str, ...]
    body_taps: tuple[str, ...]
    reconstruction_taps: tuple[str, ...]

    @property
    def taps(self) -> tuple[str, ...]: ...

    @property
    def feedback_taps(self) -> tuple[str, ...]: ...

    def __call__(self, x: Tensor, **options: Any) -> Trace:
        """x: (N, C, H, W) float in [0, 1] -> the Trace of iterations 0..T; ``options``: the
        fields of :class:`Call`, as keywords."""
        ...

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error for images this model cannot take (shape, dtype, NaN)."""
        ...


def check_iterations(iterations: int) -> int:
    """``iterations`` (T, a count of feedback iterations) as an int, if it is an integer >= 0
    (a numpy integer too; not a bool)."""
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) \
            or iterations < 0:
        raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}")
    return int(iterations)


def resolve_iterations(model: FeedbackModel, iterations: int | None) -> int:
    """The T a call runs: ``iterations``, checked (an integer >= 0), or the model's own when
    None. The one place that decides it: engines, attacks, extraction and Brain-Score call it."""
    return model.iterations if iterations is None else check_iterations(iterations)


def compared_iterations(model: FeedbackModel, iterations: int) -> int:
    """The T a model runs in a comparison that runs every model at ``iterations`` (checked):
    a plain CNN (a model whose own T is 0) keeps its single pass."""
    return 0 if model.iterations == 0 else check_iterations(iterations)


def supports_halting(model: FeedbackModel) -> bool:
    """Whether ``model(x, halt=tol)`` runs adaptive halting (its forward takes ``halt``)."""
    return "halt" in inspect.signature(model.forward).parameters
