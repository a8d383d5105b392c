"""Linear maps through oneDNN on the CPU.

torch's CPU ``F.linear`` calls MKL's sgemm, which on AMD CPUs runs its AVX2 kernels at half
the rate of oneDNN's matmul (the library torch's CPU convolutions use) on the same float32
products (``benchmarks/bench_linear.py``); on Intel CPUs MKL is as fast or faster per
product, and a whole model is a tie either way (benchmarks/README.md, "Linear maps on
oneDNN"). ``linear`` sends float32 CPU products of 2-D inputs of at least
``MIN_ONEDNN_MACS`` multiply-adds through oneDNN, as an op of our own with its backward
(opaque to inductor, whose linear fusions assume frozen weights), and everything else (CUDA,
other dtypes, autocast, other ranks, small products, oneDNN switched off) to ``F.linear``.
The results differ from MKL's in the last bits (another summation order), as any two BLAS
libraries' do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils import flop_counter

# the op needs torch >= 2.4 (``register_fake``); a Brain-Score plugin's vendored copy of this
# module may run on an older torch, where every product takes ``F.linear``
ONEDNN = (hasattr(torch.ops.mkldnn, "_linear_pointwise") and torch.backends.mkldnn.is_available()
          and hasattr(torch.library, "register_fake")
          and hasattr(flop_counter, "register_flop_formula"))
# below this many multiply-adds a call's fixed cost outweighs oneDNN's faster kernel (a first
# run of bench_linear.py without it: 1000 -> 128 at batch 1 ran 3x slower on oneDNN, 3136 ->
# 1000 at batch 1 1.3x faster)
MIN_ONEDNN_MACS = 2**20


def _onednn_linear(x: Tensor, weight: Tensor) -> Tensor:
    """``x @ weight.T`` by oneDNN: x (N, in), weight (out, in), float32, any strides."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")


def _fake(x: Tensor, weight: Tensor) -> Tensor:
    return x.new_empty(x.shape[0], weight.shape[0])


def _flops(x_shape: tuple[int, int], weight_shape: tuple[int, int], *args, **kwargs) -> int:
    """torch's FlopCounterMode counts the op as it counts ``F.linear``: 2 N in out."""
    return 2 * x_shape[0] * weight_shape[0] * weight_shape[1]


# once per process: a vendored copy of this package (a Brain-Score plugin's) may have done it
if ONEDNN and not hasattr(torch.ops.neurocnnf, "onednn_linear"):
    torch.library.define("neurocnnf::onednn_linear", "(Tensor x, Tensor weight) -> Tensor")
    torch.library.impl("neurocnnf::onednn_linear", "CPU")(_onednn_linear)
    torch.library.register_fake("neurocnnf::onednn_linear")(_fake)
    flop_counter.register_flop_formula(torch.ops.neurocnnf.onednn_linear)(_flops)


class _OneDNNLinear(torch.autograd.Function):
    """The op with its backward, on oneDNN too: ``x @ W.T`` (dx = grad @ W, dW = grad.T @ x)
    or, ``transposed``, ``x @ W`` (dx = grad @ W.T, dW = x.T @ grad). The transposed product
    takes W itself, not a ``W.t()`` view, so its weight gradient comes out in W's layout and
    adds to the forward's without a strided copy. Written with ``setup_context``, so torch.func's
    grad and jacrev transforms accept it."""

    @staticmethod
    def forward(x: Tensor, weight: Tensor, transposed: bool) -> Tensor:  # noqa: D102
        return torch.ops.neurocnnf.onednn_linear(x, weight.t() if transposed else weight)

    @staticmethod
    def setup_context(ctx, inputs: tuple[Tensor, Tensor, bool], output: Tensor) -> None:  # noqa: D102
        x, weight, ctx.transposed = inputs
        ctx.save_for_backward(x, weight)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # noqa: D102
        x, weight = ctx.saved_tensors
        op, grad_x, grad_weight = torch.ops.neurocnnf.onednn_linear, None, None
        if ctx.needs_input_grad[0]:
            grad_x = op(grad, weight if ctx.transposed else weight.t())
        if ctx.needs_input_grad[1]:
            grad_weight = op(x.t(), grad.t()) if ctx.transposed else op(grad.t(), x.t())
        return grad_x, grad_weight, None


def uses_onednn(x: Tensor, weight: Tensor) -> bool:
    """Whether ``linear(x, weight)`` (or ``linear_transposed(x, weight.t())``) runs on oneDNN."""
    return (ONEDNN and torch.backends.mkldnn.enabled and x.device.type == "cpu"
            and x.dim() == 2 and weight.dim() == 2
            and x.dtype == weight.dtype == torch.float32
            and x.shape[0] * weight.shape[0] * weight.shape[1] >= MIN_ONEDNN_MACS
            and not torch.is_autocast_enabled("cpu"))


def linear(x: Tensor, weight: Tensor) -> Tensor:
    """``F.linear(x, weight)`` without bias: x (N, in), weight (out, in) -> (N, out); on oneDNN
    where ``uses_onednn``."""
    if uses_onednn(x, weight):
        return _OneDNNLinear.apply(x, weight, False)
    return F.linear(x, weight)


def linear_transposed(g: Tensor, weight: Tensor) -> Tensor:
    """``g @ weight``, the feedback of ``linear``: g (N, out), weight (out, in) -> (N, in); on
    oneDNN where ``uses_onednn(g, weight.t())``. Its weight gradient has weight's layout."""
    if uses_onednn(g, weight.t()):
        return _OneDNNLinear.apply(g, weight, True)
    return g @ weight
