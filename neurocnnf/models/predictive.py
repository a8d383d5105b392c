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

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurocnnf.models.commitments import committed_regions
from neurocnnf.models.engine import (
    check_feedback_mode,
    check_images,
    check_layers,
    compiled,
    mix_feedback,
    runs_compiled,
)
from neurocnnf.models.protocol import CALL_OPTIONS, Call, check_iterations, resolve_iterations
from neurocnnf.models.registry import register_architecture
from neurocnnf.models.trace import Trace
from neurocnnf.nn.functional import max_pool, rms_normalize


class PredictiveCodingNet(nn.Module):
    """Feedforward conv blocks with untied predictive decoders and Predify updates; a
    :class:`~neurocnnf.models.protocol.FeedbackModel` like CNN-F.

    Block l is conv (``kernel_size``, 'same') + RMS norm + bias + ReLU (+ 2x2 max-pool where
    ``pool_after[l]``); its state e_l is the block's output. D_l predicts e_{l-1} from e_l: a
    transposed conv (kernel 4, stride 2 after a pooling block, else ``kernel_size``, stride 1)
    that gives the size of the layer below exactly.
    beta: feedforward weight; lam: feedback (prediction) weight; alpha: step on the gradient of
    the prediction error of the layer below. 1 - beta - lam is the memory weight.

    ``compiled``: when True, the pass runs through ``torch.compile`` as CNN-F's does (see
    :class:`~neurocnnf.models.engine.CNNF`: the same cache, and a smaller new batch size runs
    eagerly).
    """

    compiled: bool = False

    # FeedbackModel: the image (e_0) is computed once, the states e_1..e_L change per
    # iteration; the layers below the top receive the predictions D_{l+1}(e_{l+1}(t))
    encoder_taps = ("input",)
    reconstruction_taps = ("input",)
    eta: float | None = None  # no step size: the dynamics are beta, lam and alpha (config)

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 5,
        num_classes: int = 10,
        iterations: int = 2,
        beta: float = 0.8,
        lam: float = 0.1,
        alpha: float = 0.01,
        pool_after: Sequence[bool] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        arch: str = "fmnist_pc",
    ) -> None:
        super().__init__()
        if not (0 < beta <= 1 and lam >= 0 and beta + lam <= 1 and alpha >= 0):
            raise ValueError(f"need 0 < beta, 0 <= lam, beta + lam <= 1, alpha >= 0; got "
                             f"beta={beta}, lam={lam}, alpha={alpha}")
        pools = [True] * len(channels) if pool_after is None else [bool(p) for p in pool_after]
        if len(channels) < 2 or len(pools) != len(channels):
            raise ValueError(f"need >= 2 blocks and one pool_after flag per block; got "
                             f"channels={list(channels)}, pool_after={pools}")
        if image_size % 2 ** sum(pools):
            raise ValueError(f"image_size must be divisible by {2 ** sum(pools)}, got {image_size}")
        mean = (0.5,) * in_channels if mean is None else tuple(mean)
        std = (0.5,) * in_channels if std is None else tuple(std)
        if len(mean) != in_channels or len(std) != in_channels or min(std) <= 0:
            raise ValueError(f"mean and std need one value per channel ({in_channels}), std > 0")
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.pools = pools
        below = in_channels
        for i, (width, pool) in enumerate(zip(channels, pools, strict=True), 1):
            # attribute names conv<l>, bias<l>, decoder<l> (the shipped weights' keys)
            setattr(self, f"conv{i}", nn.Conv2d(below, width, kernel_size,
                                                padding=kernel_size // 2, bias=False))
            setattr(self, f"bias{i}", nn.Parameter(torch.zeros(width)))
            decoder = nn.ConvTranspose2d(width, below, 4, stride=2, padding=1) if pool else \
                nn.ConvTranspose2d(width, below, kernel_size, padding=kernel_size // 2)
            setattr(self, f"decoder{i}", decoder)
            below = width
        self.fc = nn.Linear(below * (image_size // 2 ** sum(pools)) ** 2, num_classes)
        self.body_taps = tuple(f"conv{i}" for i in range(1, len(channels) + 1))
        self.feedback_taps = ("input",) + self.body_taps[:-1]
        self.input_shape = (in_channels, image_size, image_size)
        self.num_classes = num_classes
        self.iterations = check_iterations(iterations)
        self.beta, self.lam, self.alpha = float(beta), float(lam), float(alpha)
        self.config: dict[str, Any] = dict(
            arch=arch, in_channels=in_channels, image_size=image_size,
            channels=list(channels), kernel_size=kernel_size, num_classes=num_classes,
            beta=self.beta, lam=self.lam, alpha=self.alpha,
        )
        if pool_after is not None:
            self.config["pool_after"] = pools
        if mean != (0.5,) * in_channels or std != (0.5,) * in_channels:
            self.config.update(mean=[float(v) for v in mean], std=[float(v) for v in std])
        self.compiled_batches: set[int] = set()  # batch sizes the compiled path has taken

    @property
    def taps(self) -> tuple[str, ...]:
        """All read-out layer names, bottom to top: input, conv1, conv2."""
        return self.encoder_taps + self.body_taps

    def _block(self, x: Tensor, layer: int) -> Tensor:
        """Block ``layer``'s output: its conv, norm, bias and ReLU, then the 2x2 max-pool
        where it has one (CNN-F's pooling: ``max_pool2d``'s values and gradients, faster on a
        CPU)."""
        conv, bias = getattr(self, f"conv{layer}"), getattr(self, f"bias{layer}")
        out = F.relu(rms_normalize(conv(x)) + bias.view(1, -1, 1, 1))
        return max_pool(out, 2) if self.pools[layer - 1] else out

    def _error_descent(self, below: Tensor, prediction: Tensor, decoder: nn.ConvTranspose2d
                       ) -> Tensor:
        """Minus the gradient grad_e 1/2 ||below - D(e)||^2: D^T (below - D(e)), D^T being conv2d
        with D's weight. The update adds alpha times it: the same values, bit for bit, as
        subtracting alpha times the gradient, without the negation's pass (nor its backward's)."""
        return F.conv2d(below - prediction, decoder.weight, stride=decoder.stride,
                        padding=decoder.padding)

    def forward(self, x: Tensor, **options: Any) -> Trace:
        """Run T predictive-coding iterations on images ``x`` (N, C, H, W) in [0, 1].

        ``options``: the keyword arguments of every FeedbackModel call (:class:`Call`).
        ``eta`` must be None (CNN-F's step size has no meaning here); ``mask_stats`` records
        nothing (no latent masks). ``decode`` returns D_1(e_1(t)) in pixel scale.
        ``feedback``: 'intact', or the ablations 'zero' / 'shuffle' of every prediction.
        Other keywords (CNN-F's ``halt``, ``max_iterations``) are refused by name.
        """
        unsupported = sorted(set(options) - CALL_OPTIONS)
        if unsupported:
            raise ValueError(f"the predictive-coding model takes no {unsupported}: "
                             "adaptive halting (halt, max_iterations) is a CNN-F feature; it "
                             "runs a fixed number of iterations")
        call = Call(**options)
        iterations, eta, layers, feedback = call.iterations, call.eta, call.layers, call.feedback
        if eta is not None:
            raise ValueError("eta is a CNN-F setting; the predictive-coding model uses "
                             "beta, lam and alpha (set at construction)")
        iterations = resolve_iterations(self, iterations)
        self.check_input(x)
        check_feedback_mode(feedback)
        check_layers(layers, self.taps)
        keep = set(self.taps) if layers is None else set(layers)
        run = compiled(settle) if runs_compiled(self, len(x)) else settle
        states, predictions, logits = run(self, x, iterations, feedback)
        drive1 = states["conv1"][0]
        forward = {name: values for name, values in states.items() if name in keep}
        fed_back = {name: values for name, values in predictions.items() if name in keep}
        decoded = [self.decoder1(s) * self.std + self.mean for s in states["conv1"]] \
            if call.decode else []
        return Trace(logits, drive1, states["conv1"], predictions["conv1"], forward, fed_back,
                     {}, decoded)

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error for images this model cannot take."""
        check_images(x, self.input_shape, self.config["arch"])


def settle(model: PredictiveCodingNet, x: Tensor, iterations: int, feedback: str
           ) -> tuple[dict[str, list[Tensor]], dict[str, list[Tensor]], list[Tensor]]:
    """The feedforward pass and T = ``iterations`` Predify updates of ``model`` on images ``x``
    (N, C, H, W): the states e_l(t) of every tap (``input``: the normalised image, T + 1
    times), the predictions D_{l+1}(e_{l+1}(t)) of every feedback tap (T each) and the logits
    (T + 1 of (N, classes))."""
    depth = len(model.body_taps)
    e = [(x - model.mean) / model.std]  # e[0]: the image, constant
    for layer in range(1, depth + 1):
        e.append(model._block(e[-1], layer))
    drive1 = e[1]
    states = {"input": [e[0]] * (iterations + 1), **{f"conv{i}": [e[i]] for i in
                                                  range(1, depth + 1)}}
    predictions: dict[str, list[Tensor]] = {name: [] for name in model.feedback_taps}
    logits = [model.fc(e[depth].flatten(1))]
    memory = 1.0 - model.beta - model.lam
    for _ in range(iterations):
        preds = [mix_feedback(getattr(model, f"decoder{i}")(e[i]), feedback)
                 for i in range(1, depth + 1)]  # preds[i - 1] = D_i(e_i): predicts e_{i-1}
        for name, pred in zip(model.feedback_taps, preds, strict=True):
            predictions[name].append(pred)
        new = [e[0]]
        for i in range(1, depth + 1):
            drive = drive1 if i == 1 else model._block(new[i - 1], i)
            top_down = model.lam * preds[i] + memory * e[i] if i < depth else \
                (1.0 - model.beta) * e[i]
            descent = model._error_descent(e[i - 1], preds[i - 1],
                                           getattr(model, f"decoder{i}"))
            new.append(model.beta * drive + top_down + model.alpha * descent)
        e = new
        for i in range(1, depth + 1):
            states[f"conv{i}"].append(e[i])
        logits.append(model.fc(e[depth].flatten(1)))
    return states, predictions, logits


def fmnist_pc(iterations: int = 2, eta: float | None = None, num_classes: int = 10,
              **options: Any) -> PredictiveCodingNet:
    """The predictive-coding comparator on the FMNIST-small backbone (see module docstring)."""
    if eta is not None:
        raise ValueError("eta does not apply to fmnist_pc (set model.eta: null); its dynamics "
                         "are beta/lam/alpha in model.options")
    return PredictiveCodingNet(num_classes=num_classes, iterations=iterations, **options)


def vgg6_pc(iterations: int = 2, eta: float | None = None, num_classes: int = 10,
            width: int = 48, mean: Sequence[float] | None = None,
            std: Sequence[float] | None = None, **options: Any) -> PredictiveCodingNet:
    """The predictive-coding comparator on the VGG-6 backbone of ``vgg6`` (CIFAR-10 zoo): six
    3x3 blocks (``width``, 2x, 4x channels), a pool after every second one."""
    if eta is not None:
        raise ValueError("eta does not apply to vgg6_pc (set model.eta: null); its dynamics "
                         "are beta/lam/alpha in model.options")
    return PredictiveCodingNet(
        options.pop("in_channels", 3), options.pop("image_size", 32),
        options.pop("channels", [width, width, 2 * width, 2 * width, 4 * width, 4 * width]),
        options.pop("kernel_size", 3), num_classes, iterations,
        pool_after=options.pop("pool_after", [False, True, False, True, False, True]),
        mean=mean, std=std, arch="vgg6_pc", **options)


# the comparators share their CNN-F's backbone, so its commitments too (vgg6's: chosen on
# fMRI for its CNN-F, commitments.py)
register_architecture("vgg6_pc", vgg6_pc, regions=committed_regions("vgg6"),
                      has_eta=False)
register_architecture(
    "fmnist_pc", fmnist_pc, regions={"V1": "conv1", "V2": "conv1", "V4": "conv2", "IT": "conv2"},
    has_eta=False,
)
