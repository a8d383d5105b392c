"""A predictive-coding comparator (Predify / PCN style) on the FMNIST-small backbone.

Feedforward blocks are those of ``fmnist_small`` (conv 5x5 + RMS norm + bias + ReLU + max-pool,
twice, then FC). Untied decoders D_l (transposed convs) predict the layer below from the layer
above; the states e_1 (32x14x14) and e_2 (64x7x7) are updated per iteration as in Predify
(Choksi et al. 2021, Eq. 2; ``PCoder.forward`` in predify/modules/base.py):

    e_l(t+1) = beta * FF_l(e_{l-1}(t+1)) + lam * D_{l+1}(e_{l+1}(t)) + (1 - beta - lam) * e_l(t)
               - alpha * grad_{e_l} E_{l-1}(t),   E_{l-1} = 1/2 ||e_{l-1}(t) - D_l(e_l(t))||^2

per sample (sum over units), with e_0 the normalized image and no feedback term at the top.
Defaults beta 0.8, lam 0.1, alpha 0.01: the values of the paper's experiments ("beta_n = 0.8,
lambda_n = 0.1, alpha_n = 0.01 for all the encoders/decoders"), not the library's defaults
(0.33, 0.33, 0.01 in ``PNetSameHP``). alpha scales another error than Predify's: its ``PCoder``
differentiates ``mse_loss`` (mean over batch x units) and ``PCoderN`` multiplies by
numel / sqrt(C) (C: units of the prediction that one state unit reaches), a step of
2 alpha / sqrt(C) * D^T(D(e) - below) against our alpha * D^T(D(e) - below); our alpha 0.01 is
PCoderN's 0.02 at conv1 (C = 16) and about 0.11 at conv2 (C = 512).
Iteration 0 is the plain feedforward pass, so t = 0 equals the CNN, as in CNN-F. The call
returns the same :class:`~neurocnnf.models.trace.Trace` as CNN-F:

- taps ``input`` (e_0, the encoder tap: constant), ``conv1`` (e_1), ``conv2`` (e_2) (the body
  taps); ``forward[l][t]`` is e_l(t);
- ``feedback[l][t]`` is the prediction D_{l+1}(e_{l+1}(t)) of layer l (the feedback taps
  ``input``, ``conv1``);
- ``h``/``h_hat``/``reconstruction`` are e_1(0), e_1(t) and D_2(e_2(t)), so the CNN-F training
  losses (reconstruction of layer k and of the layers in ``reconstruction_taps``) apply as is.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurocnnf.models.engine import (
    FeedbackMode,
    check_feedback_mode,
    check_images,
    check_iterations,
    check_layers,
    mix_feedback,
)
from neurocnnf.models.registry import register_architecture
from neurocnnf.models.trace import Trace
from neurocnnf.nn.functional import rms_normalize


class PredictiveCodingNet(nn.Module):
    """Two feedforward conv blocks with untied predictive decoders and Predify updates; a
    :class:`~neurocnnf.models.protocol.FeedbackModel` like CNN-F.

    beta: feedforward weight; lam: feedback (prediction) weight; alpha: step on the gradient of
    the prediction error of the layer below. 1 - beta - lam is the memory weight.
    """

    # FeedbackModel: the image (e_0) is computed once, the states e_1, e_2 change per
    # iteration; the layers below the top receive the predictions D_{l+1}(e_{l+1}(t))
    encoder_taps = ("input",)
    body_taps = ("conv1", "conv2")
    feedback_taps = ("input", "conv1")
    reconstruction_taps = ("input",)
    eta: float | None = None  # no step size: the dynamics are beta, lam and alpha (config)

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        channels: tuple[int, int] = (32, 64),
        kernel_size: int = 5,
        num_classes: int = 10,
        iterations: int = 2,
        beta: float = 0.8,
        lam: float = 0.1,
        alpha: float = 0.01,
    ) -> None:
        super().__init__()
        if not (0 < beta <= 1 and lam >= 0 and beta + lam <= 1 and alpha >= 0):
            raise ValueError(f"need 0 < beta, 0 <= lam, beta + lam <= 1, alpha >= 0; got "
                             f"beta={beta}, lam={lam}, alpha={alpha}")
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        c1, c2 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, kernel_size, padding=kernel_size // 2, bias=False)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size, padding=kernel_size // 2, bias=False)
        self.bias1, self.bias2 = nn.Parameter(torch.zeros(c1)), nn.Parameter(torch.zeros(c2))
        self.fc = nn.Linear(c2 * (image_size // 4) ** 2, num_classes)
        # D_1: e_1 -> image, D_2: e_2 -> e_1; kernel 4, stride 2 doubles the size exactly
        self.decoder1 = nn.ConvTranspose2d(c1, in_channels, 4, stride=2, padding=1)
        self.decoder2 = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
        self.input_shape = (in_channels, image_size, image_size)
        self.num_classes = num_classes
        self.iterations = check_iterations(iterations)
        self.beta, self.lam, self.alpha = float(beta), float(lam), float(alpha)
        self.config: dict[str, Any] = dict(
            arch="fmnist_pc", in_channels=in_channels, image_size=image_size,
            channels=list(channels), kernel_size=kernel_size, num_classes=num_classes,
            beta=self.beta, lam=self.lam, alpha=self.alpha,
        )

    @property
    def taps(self) -> tuple[str, ...]:
        """All read-out layer names, bottom to top: input, conv1, conv2."""
        return self.encoder_taps + self.body_taps

    def _block(self, x: Tensor, conv: nn.Conv2d, bias: Tensor) -> Tensor:
        return F.max_pool2d(F.relu(rms_normalize(conv(x)) + bias.view(1, -1, 1, 1)), 2)

    def _error_gradient(self, below: Tensor, prediction: Tensor, decoder: nn.ConvTranspose2d
                        ) -> Tensor:
        """grad_e 1/2 ||below - D(e)||^2 = -D^T (below - D(e)); D^T is conv2d with D's weight."""
        return -F.conv2d(below - prediction, decoder.weight, stride=2, padding=1)

    def forward(
        self,
        x: Tensor,
        iterations: int | None = None,
        eta: float | None = None,
        layers: Collection[str] | None = (),
        mask_stats: bool = False,
        decode: bool = False,
        feedback: FeedbackMode = "intact",
    ) -> Trace:
        """Run T predictive-coding iterations on images ``x`` (N, C, H, W) in [0, 1].

        ``eta`` must be None (CNN-F's step size has no meaning here); ``mask_stats`` records
        nothing (no latent masks). ``decode`` returns D_1(e_1(t)) in pixel scale.
        ``feedback``: 'intact', or the ablations 'zero' / 'shuffle' of every prediction.
        """
        if eta is not None:
            raise ValueError("eta is a CNN-F setting; the predictive-coding model uses "
                             "beta, lam and alpha (set at construction)")
        steps = self.iterations if iterations is None else check_iterations(iterations)
        check_images(x, self.input_shape, "fmnist_pc")
        check_feedback_mode(feedback)
        check_layers(layers, self.taps)
        keep = set(self.taps) if layers is None else set(layers)
        e0 = (x - 0.5) / 0.5
        drive1 = self._block(e0, self.conv1, self.bias1)
        e1, e2 = drive1, self._block(drive1, self.conv2, self.bias2)
        states = {"input": [e0] * (steps + 1), "conv1": [e1], "conv2": [e2]}
        predictions: dict[str, list[Tensor]] = {"input": [], "conv1": []}
        logits = [self.fc(e2.flatten(1))]
        memory = 1.0 - self.beta - self.lam
        for _ in range(steps):
            pred0 = mix_feedback(self.decoder1(e1), feedback)
            pred1 = mix_feedback(self.decoder2(e2), feedback)
            predictions["input"].append(pred0)
            predictions["conv1"].append(pred1)
            new_e1 = (self.beta * drive1 + self.lam * pred1 + memory * e1
                      - self.alpha * self._error_gradient(e0, pred0, self.decoder1))
            new_e2 = (self.beta * self._block(new_e1, self.conv2, self.bias2)
                      + (1.0 - self.beta) * e2
                      - self.alpha * self._error_gradient(e1, pred1, self.decoder2))
            e1, e2 = new_e1, new_e2
            states["conv1"].append(e1)
            states["conv2"].append(e2)
            logits.append(self.fc(e2.flatten(1)))
        forward = {name: values for name, values in states.items() if name in keep}
        fed_back = {name: values for name, values in predictions.items() if name in keep}
        decoded = [self.decoder1(e) * 0.5 + 0.5 for e in states["conv1"]] if decode else []
        return Trace(logits, drive1, states["conv1"], predictions["conv1"], forward, fed_back,
                     {}, decoded)

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error for images this model cannot take."""
        check_images(x, self.input_shape, "fmnist_pc")


def fmnist_pc(iterations: int = 2, eta: float | None = None, num_classes: int = 10,
              **options: Any) -> PredictiveCodingNet:
    """The predictive-coding comparator on the FMNIST-small backbone (see module docstring)."""
    if eta is not None:
        raise ValueError("eta does not apply to fmnist_pc (set model.eta: null); its dynamics "
                         "are beta/lam/alpha in model.options")
    return PredictiveCodingNet(num_classes=num_classes, iterations=iterations, **options)


# the comparator shares fmnist_small's backbone, so its commitments too
register_architecture(
    "fmnist_pc", fmnist_pc, regions={"V1": "conv1", "V2": "conv1", "V4": "conv2", "IT": "conv2"},
    has_eta=False,
)
