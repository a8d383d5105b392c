"""The model interface every engine implements (CNN-F, the predictive-coding comparator, a
``from_backbone`` model): what attacks, extraction, Brain-Score and the analyses may rely on.

Code downstream of the models is typed against :class:`FeedbackModel`, never against one engine.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal, Protocol, runtime_checkable

from torch import Tensor

from neurocnnf.models.trace import Trace

FeedbackMode = Literal["intact", "zero", "shuffle"]


@runtime_checkable
class FeedbackModel(Protocol):
    """An iterative image model: ``model(x)`` runs T iterations and returns their Trace.

    Attributes:
        input_shape: (C, H, W) of the images it takes (float, pixel scale [0, 1]).
        num_classes: width of the logits.
        iterations: T used when a call gives none (0 = the plain feedforward pass).
        config: the architecture's settings, enough to rebuild it (``arch`` names the builder
            in :mod:`neurocnnf.models.registry`); saved in checkpoints.
        encoder_taps / body_taps: read-out layer names below / above layer k, bottom to top.
            Encoder layers are computed once; body layers change across iterations.
        taps: encoder_taps + body_taps.
    """

    input_shape: tuple[int, int, int]
    num_classes: int
    iterations: int
    config: dict[str, Any]
    encoder_taps: tuple[str, ...]
    body_taps: tuple[str, ...]

    @property
    def taps(self) -> tuple[str, ...]: ...

    def __call__(
        self,
        x: Tensor,
        iterations: int | None = None,
        eta: float | None = None,
        layers: Collection[str] | None = (),
        mask_stats: bool = False,
        decode: bool = False,
        feedback: FeedbackMode = "intact",
    ) -> Trace:
        """x: (N, C, H, W) float in [0, 1] -> the Trace of iterations 0..T.

        ``layers``: taps whose per-iteration activations the trace keeps (None: all, (): none).
        ``eta``: the CNN-F step size; engines without one reject a value other than None.
        """
        ...

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error for images this model cannot take (shape, dtype, NaN)."""
        ...
