"""CNN-F layers: a feedforward ``forward(x, state)`` and a generative ``feedback(g, state)``.

The feedback of a layer with weights uses the *same* Parameter (transposed convolution, W.t()),
so the generative model and the classifier are one set of weights. Per-call latents are kept in
the :class:`~neurocnnf.nn.state.InferenceState` passed to every call, never on the module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurocnnf.nn import functional as cf
from neurocnnf.nn.linear import linear, linear_transposed
from neurocnnf.nn.state import InferenceState


class FeedbackModule(nn.Module):
    """Base class: a layer of the feedforward pathway with its generative feedback."""

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:  # noqa: D102
        raise NotImplementedError

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        """Map feedback at this layer's output to feedback at its input."""
        raise NotImplementedError


class TiedConv2d(FeedbackModule):
    """Convolution without bias; feedback is ``conv_transpose2d`` with the same weight."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.stride, self.padding, self.kernel_size = stride, padding, kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        fan_out = kernel_size * kernel_size * out_channels
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / fan_out))  # He-normal

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        state.slot(self)["input_size"] = tuple(x.shape[-2:])
        return F.conv2d(x, cf.conv_weight(self.weight), stride=self.stride, padding=self.padding)

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        output_padding = cf.conv_transpose_output_padding(
            state.slot(self)["input_size"], tuple(g.shape[-2:]), self.kernel_size, self.stride,
            self.padding,
        )
        return F.conv_transpose2d(g, cf.conv_weight(self.weight), stride=self.stride,
                                  padding=self.padding, output_padding=output_padding)

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, kernel_size={k}, stride={self.stride}, padding={self.padding}"


class TiedLinear(FeedbackModule):
    """Linear map without bias; feedback is ``g @ W`` with the one Parameter ``W`` (out, in)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # torch.nn.Linear's default

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        return linear(x, self.weight)

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        return linear_transposed(g, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"


class RMSNorm(FeedbackModule):
    """Per-sample, per-channel division by the spatial RMS. Feedback passes through."""

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        return cf.rms_normalize(x)

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        return g


class FeedbackNorm(FeedbackModule):
    """Identity going forward; RMS-normalizes the feedback (keeps ||g|| constant, Ass. 2.1.A).

    Placed at the top of a block so that the feedback reaching the block's AdaReLU is on the
    same scale as the normalized feedforward features it is mixed with (eq. 7).
    """

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        return x

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        return cf.rms_normalize(g)


class Bias(FeedbackModule):
    """Learnable per-channel bias (zero-init), added going forward; feedback passes through."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x + self.bias.view(shape)

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        return g

    def extra_repr(self) -> str:
        return f"{self.bias.numel()}"


class AdaReLU(FeedbackModule):
    """Eq. 3/4. Iteration 0: ReLU. Feedback: pass ``g * z`` down and remember ``g``.

    Later forward passes first apply the online update f <- f + eta (g - f) (eq. 7), then the
    mask z = 1(f g > 0), and output ``f * z``.
    """

    latent_name = "relu"

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        slot = state.slot(self)
        g = slot.get("g")
        if g is None:
            out = F.relu(x)
            if not state.latents:  # no feedback pass will read the mask
                return out
            mask = cf.relu_mask(out)
        else:
            x = cf.online_update(x, g, state.eta)
            mask = cf.ada_relu_mask(x, g)
            out = x * mask
        state.note_mask(self.latent_name, slot.get("mask"), mask)
        slot["mask"] = mask
        return out

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        slot = state.slot(self)
        slot["g"] = g
        return g * slot["mask"].to(g.dtype)  # in g's dtype, as with a bool mask (autocast)


class AdaPool(FeedbackModule):
    """Eq. 3/5 pooling (2x2). Iteration 0: max-pool. Later: max where g >= 0, min where g < 0.

    Feedback unpools ``g`` to the positions chosen in the latest forward pass (the latent z_P:
    argmax or argmin per window) and remembers ``g`` for the next forward pass.
    """

    latent_name = "pool"

    def __init__(self, kernel_size: int = 2) -> None:
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        slot = state.slot(self)
        if not state.latents and "g" not in slot:  # no feedback pass will read the indices
            return cf.max_pool(x, self.kernel_size)
        out, indices = cf.ada_pool(x, slot.get("g"), self.kernel_size)
        state.note_mask(self.latent_name, slot.get("indices"), indices)
        slot["indices"], slot["input_size"] = indices, x.shape[-2:]
        return out

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        slot = state.slot(self)
        slot["g"] = g
        return cf.place(g, slot["indices"], slot["input_size"])

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class AvgPool(FeedbackModule):
    """Average pooling; its feedback is nearest-neighbour upsampling by the same factor."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size)

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        return F.interpolate(g, scale_factor=self.kernel_size, mode="nearest")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class Flatten(FeedbackModule):
    """(N, C, H, W) -> (N, C*H*W); feedback reshapes back."""

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        state.slot(self)["shape"] = x.shape[1:]
        return x.flatten(1)

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        return g.reshape(g.shape[0], *state.slot(self)["shape"])


class Normalize(FeedbackModule):
    """Pixel scale [0, 1] -> (x - mean) / std, per channel. Runs once, before the encoder."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        return (x - self.mean) / self.std

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        return g / self.std


class Tap(FeedbackModule):
    """A named read-out point: identity both ways, records f_t(l) and g_t(l) when asked."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        if state.wants(self.name):
            state.forward.setdefault(self.name, []).append(x)
        return x

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        if state.wants(self.name):
            state.feedback.setdefault(self.name, []).append(g)
        return g

    def extra_repr(self) -> str:
        return repr(self.name)


class FeedbackSequential(FeedbackModule):
    """Runs children in order going forward and in reverse order in feedback."""

    def __init__(self, *layers: FeedbackModule) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        for layer in self.layers:
            x = layer(x, state)
        return x

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        for layer in reversed(self.layers):
            g = layer.feedback(g, state)
        return g

    def __len__(self) -> int:
        return len(self.layers)


class PreActResidual(FeedbackModule):
    """Pre-activation residual block (WideResNet) with Norm+Bias instead of BatchNorm.

    Forward: a = AdaReLU(Bias(Norm(x))); out = conv2(AdaReLU(Bias(Norm(conv1(a))))) + skip,
    skip = x, or a 1x1 projection of ``a`` where channels or stride change. Feedback is the
    transpose of that graph with the feedback normalized after each transposed conv.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.pre = FeedbackSequential(RMSNorm(), Bias(in_channels), AdaReLU())
        self.residual = FeedbackSequential(
            FeedbackNorm(),
            TiedConv2d(in_channels, out_channels, 3, stride=stride, padding=1),
            RMSNorm(), Bias(out_channels), AdaReLU(), FeedbackNorm(),
            TiedConv2d(out_channels, out_channels, 3, stride=1, padding=1),
        )
        needs_projection = in_channels != out_channels or stride != 1
        self.shortcut = (
            TiedConv2d(in_channels, out_channels, 1, stride=stride) if needs_projection else None
        )

    def forward(self, x: Tensor, state: InferenceState) -> Tensor:
        a = self.pre(x, state)
        skip = x if self.shortcut is None else self.shortcut(a, state)
        return skip + self.residual(a, state)

    def feedback(self, g: Tensor, state: InferenceState) -> Tensor:
        r = self.residual.feedback(g, state)
        if self.shortcut is None:
            return self.pre.feedback(r, state) + g
        return self.pre.feedback(r + self.shortcut.feedback(g, state), state)
