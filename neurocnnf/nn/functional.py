"""Pure functions behind the CNN-F layers (the analogue of ``torch.nn.functional``).

Shapes: ``N`` batch, ``C`` channels, ``H x W`` spatial. All functions are differentiable in their
tensor inputs except where a mask is returned: masks are constants for autograd.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

RMS_EPS = 1e-8
# torch.compiler.is_compiling (torch >= 2.3); a Brain-Score plugin's vendored copy may run on an
# older torch, which never compiles these passes
_is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)


def rms_normalize(x: Tensor, eps: float = RMS_EPS) -> Tensor:
    """Divide each sample's channel by its spatial RMS, sqrt(mean(x^2) + eps).

    ``x``: (N, C, H, W) -> same shape. No mean subtraction, no affine (Assumption 2.1.A).
    A 2-D input (N, D) is returned unchanged: the norm is defined over space only.
    The forward pass is the formula as written (bit for bit); its backward is written by hand
    (``_RMSNormalize``).
    """
    if x.dim() != 4:
        return x
    return _RMSNormalize.apply(x, eps)


class _RMSNormalize(torch.autograd.Function):
    """y = x * r, r = rsqrt(mean_HW(x^2) + eps), with the backward dx = r (dy - y mean(dy y)):
    four passes over the features instead of autograd's eight (through pow, mean, rsqrt and
    the product), and the output and r saved instead of the input."""

    @staticmethod
    def forward(ctx, x: Tensor, eps: float) -> Tensor:  # noqa: D102
        r = torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + eps)
        y = x * r
        ctx.save_for_backward(y, r)
        return y

    @staticmethod
    def backward(ctx, dy: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        y, r = ctx.saved_tensors
        dot = (dy * y).mean(dim=(2, 3), keepdim=True)
        return torch.addcmul(dy, y, dot, value=-1) * r, None


def online_update(f: Tensor, g: Tensor, eta: float) -> Tensor:
    """Eq. 6/7: ``f + eta * (g - f)``; eta = 1 replaces ``f`` by ``g`` (greedy).

    Written out, not as ``torch.lerp`` or ``add(alpha=)``: those fuse the product into one
    rounding, which differs in the last bit for a tenth of the units; the masks of the next
    pass then flip where f * g is near 0 and the logits move by 1e-3 (fmnist_adv, T = 2).
    """
    if eta == 1.0:
        return g
    return f + eta * (g - f)


def relu_mask(out: Tensor) -> Tensor:
    """Latent of a plain ReLU (iteration 0) from its output ``out = relu(f)``: z = 1(f > 0),
    same shape and dtype, in one pass (the sign of ``out``).

    Masks are 0/1 in the features' dtype, not bool: multiplying by them (feedback and
    backward) is then a plain product, about 4x faster on CPU than with a bool operand.
    """
    return out.detach().sign()


def ada_relu_mask(f: Tensor, g: Tensor) -> Tensor:
    """Eq. 4: z = 1(f * g > 0): a unit is on where feedforward and feedback agree in sign.

    Where g < 0 this keeps the *negative* values of f (the reference code's reading of eq. 3);
    where g == 0 the unit is off. 0/1 in the dtype of ``f * g`` (see ``relu_mask``).
    """
    return (f.detach() * g.detach()).gt_(0)


def ada_pool(f: Tensor, g: Tensor | None, kernel_size: int = 2) -> tuple[Tensor, Tensor]:
    """Eq. 3/5 pooling over non-overlapping ``kernel_size`` windows.

    ``f``: (N, C, H, W). ``g``: pooled feedback (N, C, H/k, W/k) or None (iteration 0).
    Returns (pooled output, flat input indices of the chosen element per window). Where g >= 0
    (or g is None) the window's max is taken, where g < 0 its min (paper eq. 5; the reference
    code gives 0 where g == 0, we follow the paper).

    The gradient goes to the chosen element of each window, as pooling ``f`` itself would send
    it; ``g`` gets none (the choice is a constant for autograd). The choice is made without
    autograd (``_AdaPool``): the fast pooling kernel, and no backward of the pooling or of the
    sign products.
    """
    if f.requires_grad and torch.is_grad_enabled():
        return _AdaPool.apply(f, g, kernel_size)
    return _choose(f, g, kernel_size)


def _choose(f: Tensor, g: Tensor | None, kernel_size: int) -> tuple[Tensor, Tensor]:
    """``ada_pool`` without autograd: the window's max of ``f``, or of ``f * sign(g)`` (the max
    of -f is minus the min of f) multiplied back by the sign: f at the chosen index, exactly."""
    if g is None:
        return _max_pool(f, kernel_size)
    sign = _sign(g, f.dtype)
    if f.device.type != "cpu" or not _tiles(f, sign, kernel_size):
        signed = f * _spread_sign(sign, f, kernel_size)
    elif _is_compiling():
        pooled, indices = _window_max(f, sign, kernel_size)
        return pooled * sign, indices
    else:
        signed = _signed_channels_last(f, sign, kernel_size)
    pooled, indices = _max_pool(signed, kernel_size, layout_of=f)
    return pooled * sign, indices


class _AdaPool(torch.autograd.Function):
    """``_choose`` with the gradient of picking f at the chosen indices: dL/df is dL/dpooled
    placed at those indices, zero elsewhere (``place``). Written with ``setup_context``, so
    torch.func's grad transforms accept it."""

    @staticmethod
    def forward(f: Tensor, g: Tensor | None, kernel_size: int  # noqa: D102
                ) -> tuple[Tensor, Tensor]:
        return _choose(f, g, kernel_size)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: tuple[Tensor, Tensor]) -> None:  # noqa: D102
        (f, _, _), (_, indices) = inputs, output
        ctx.mark_non_differentiable(indices)
        ctx.save_for_backward(indices)
        ctx.input_size = f.shape[-2:]

    @staticmethod
    def backward(ctx, d_pooled: Tensor, _: Tensor) -> tuple[Tensor, None, None]:  # noqa: D102
        (indices,) = ctx.saved_tensors
        return place(d_pooled, indices, ctx.input_size), None, None


def _sign(g: Tensor, dtype: torch.dtype) -> Tensor:
    """+1 where g >= 0 (-0.0 included), -1 where g < 0, in ``dtype``: the sign of
    sign(g) + 1/2, exact in any float dtype. ``torch.where(g >= 0, 1.0, -1.0)`` gives the same
    values 5-10x slower on a CPU (benchmarks/README.md, "The pooled sign")."""
    return torch.sign(g).add_(0.5).sign_().to(dtype)


def _signed_channels_last(f: Tensor, sign: Tensor, kernel_size: int) -> Tensor:
    """``f * _spread_sign(sign, f, kernel_size)`` for windows that tile ``f`` (eager CPU
    passes): one broadcast product written straight into a channels_last tensor, the layout
    ``_max_pool`` pools in, so neither the spread sign nor the layout copy is made (the same
    values)."""
    n, c = f.shape[:2]
    h, w = sign.shape[-2:]
    k = kernel_size
    out = torch.empty_like(f, memory_format=torch.channels_last)
    torch.mul(f.reshape(n, c, h, k, w, k), sign[:, :, :, None, :, None],
              out=out.view(n, c, h, k, w, k))
    return out


def _tiles(f: Tensor, pooled: Tensor, kernel_size: int) -> bool:
    """Whether ``pooled``'s windows of ``kernel_size`` cover ``f`` exactly (even sizes)."""
    return tuple(f.shape[-2:]) == tuple(kernel_size * s for s in pooled.shape[-2:])


def _window_max(f: Tensor, sign: Tensor, kernel_size: int) -> tuple[Tensor, Tensor]:
    """The max of ``f * sign`` over each window and its flat input index, as a reduction over
    views of ``f``: ``max_pool2d``'s values and indices (the first maximum in window order),
    for a compiled CPU graph. There inductor computes the signed product inside the reduction;
    pooled by ``max_pool2d`` it stored the product in NCHW order first, a strided store and
    reload of every value (benchmarks/README.md, "Pooling with feedback as a reduction")."""
    n, c, _, cols = f.shape
    h, w = sign.shape[-2:]
    k = kernel_size
    signed = f.view(n, c, h, k, w, k) * sign[:, :, :, None, :, None]
    pooled, within = signed.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w, k * k).max(-1)
    row = torch.arange(h, device=f.device)[:, None] * k + within // k
    col = torch.arange(w, device=f.device) * k + within % k
    return pooled, row * cols + col


def _spread_sign(sign: Tensor, f: Tensor, kernel_size: int) -> Tensor:
    """The pooled sign over each window of ``f``, +1 on an odd input's last row/column.

    Pooling ``f * spread`` takes the max of f where the sign is +1 and, at the same (first)
    index, the min where it is -1 (the max of -f is minus the min of f): one pooling for
    eq. 5, exact in values, indices and gradients.
    """
    spread = spread_windows(sign, kernel_size)
    rows, cols = (a - b for a, b in zip(f.shape[-2:], spread.shape[-2:], strict=True))
    if rows or cols:  # odd input: the last row/column lies outside every window
        spread = F.pad(spread, (0, cols, 0, rows), value=1.0)
    return spread


def spread_windows(x: Tensor, kernel_size: int) -> Tensor:
    """(N, C, h, w) -> (N, C, k*h, k*w): each value copied over its k x k window.

    The same values as ``F.interpolate(x, scale_factor=k, mode="nearest")``, by one broadcast
    copy: 2-7x faster on CPU, most at large batches (interpolate's kernel slows down several-fold
    on tensors that leave the cache, e.g. SPSA's 4,000-probe batches).
    """
    n, c, h, w = x.shape
    k = kernel_size
    return x[:, :, :, None, :, None].expand(n, c, h, k, w, k).reshape(n, c, h * k, w * k)


def _max_pool(f: Tensor, kernel_size: int, layout_of: Tensor | None = None
              ) -> tuple[Tensor, Tensor]:
    """``max_pool2d`` with indices, without autograd (``ada_pool`` calls it so), returned in
    the memory layout of ``layout_of`` (default ``f``). On a CPU it pools a channels_last copy
    (none if ``f`` is one): torch's NCHW kernel is 2.5-5x slower there, and the values and
    indices are the same."""
    if f.device.type == "cpu":
        nhwc = (f if layout_of is None else layout_of).is_contiguous(
            memory_format=torch.channels_last)
        pooled, indices = F.max_pool2d(f.contiguous(memory_format=torch.channels_last),
                                       kernel_size, return_indices=True)
        if nhwc:
            return pooled, indices
        return pooled.contiguous(), indices.contiguous()  # in layout_of's layout
    return F.max_pool2d(f, kernel_size, return_indices=True)


def max_pool(f: Tensor, kernel_size: int) -> Tensor:
    """``max_pool2d``'s values over non-overlapping ``kernel_size`` windows (N, C, H/k, W/k),
    without its indices. Without autograd, the maximum of the windows' k*k strided views of
    ``f``: one read of ``f`` in its own layout, with no layout copy and no indices written
    (benchmarks/README.md, "Latents no feedback pass reads"); with autograd, ``ada_pool``'s
    pooling, whose gradient goes to each window's first maximum as max_pool2d's does
    (``torch.maximum`` would split it between ties)."""
    if f.requires_grad and torch.is_grad_enabled():
        return ada_pool(f, None, kernel_size)[0]
    k = kernel_size
    rows, cols = (size // k * k for size in f.shape[-2:])
    views = [f[..., i:rows:k, j:cols:k] for i in range(k) for j in range(k)]
    return functools.reduce(torch.maximum, views)


def place(g: Tensor, indices: Tensor, size: tuple[int, int]) -> Tensor:
    """Put each value of ``g`` (N, C, h, w) at its flat input index (``indices``, same shape,
    as pooling returns them) of an (N, C, *size) map of zeros: the feedback of (Ada)pooling.

    ``max_unpool2d``'s values and gradients, faster on a CPU (its backward copies the gradient
    into the indices' layout before gathering; benchmarks/README.md, "Pooling without a
    gather")."""
    n, c = g.shape[:2]
    out = g.new_zeros(n, c, size[0] * size[1])
    return out.scatter_(2, indices.flatten(2), g.flatten(2)).view(n, c, *size)


def conv_weight(weight: Tensor) -> Tensor:
    """``weight`` (C_out, C_in, k, k) in the layout its convolutions run fastest in:
    channels_last inside a compiled graph on the CPU, unchanged otherwise.

    Inductor runs a CPU graph's convolutions on oneDNN in NHWC; with NCHW weights the feature
    maps between them mix both layouts and its fused elementwise and pooling kernels gather
    strided values. With channels_last weights every map stays NHWC (compiled inference's
    speed-up: benchmarks/README.md, "Inference against its FLOP time"). Values equal the NCHW
    graph's to rounding; eager passes keep their weights as they are (bit for bit).
    """
    if weight.device.type == "cpu" and _is_compiling():
        return weight.contiguous(memory_format=torch.channels_last)
    return weight


def conv_transpose_output_padding(
    input_size: tuple[int, int],
    output_size: tuple[int, int],
    kernel: int,
    stride: int,
    padding: int,
) -> tuple[int, int]:
    """Output padding that makes ``conv_transpose2d`` return exactly ``input_size``."""
    return tuple(  # type: ignore[return-value]
        i - ((o - 1) * stride - 2 * padding + kernel)
        for i, o in zip(input_size, output_size, strict=True)
    )
