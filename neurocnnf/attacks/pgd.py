"""L_inf gradient attacks (FGSM, PGD with random start) in pixel scale [0, 1]."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from neurocnnf.models.protocol import FeedbackModel

Target = Literal["first", "e2e"]


def logits_fn(model: FeedbackModel, target: Target = "first", scoring: str = "last",
              iterations: int | None = None) -> Callable[[Tensor], Tensor]:
    """A function images -> logits (N, classes) that an attack differentiates.

    target 'first': the plain feedforward pass (iteration 0); 'e2e': through all iterations,
    returning the logits that are scored ('last' or 'avg'). The model's parameters are left
    out of the graph it records (an attack needs input gradients only): the same gradients,
    without the weight-gradient work that a compiled backward would otherwise do.
    """
    if target == "first":
        def run(x: Tensor) -> Tensor:
            return model(x, iterations=0).first
    elif target == "e2e":
        def run(x: Tensor) -> Tensor:
            return model(x, iterations=iterations).scored(scoring)
    else:
        raise ValueError(f"unknown attack target {target!r}: use 'first' or 'e2e'")

    def logits(x: Tensor) -> Tensor:
        with _parameters_frozen(model):
            return run(x)
    return logits


@contextmanager
def _parameters_frozen(model: FeedbackModel) -> Iterator[None]:
    """Within the block, no parameter of ``model`` requires grad; afterwards each is as before."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


def _check_eps(eps: float) -> None:
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must be in [0, 1] (pixel scale), got {eps}")


def _input_gradient(fn: Callable[[Tensor], Tensor], x: Tensor, y: Tensor) -> Tensor:
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(fn(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(fn: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, eps: float) -> Tensor:
    """Fast gradient sign: x + eps * sign(grad), clipped to [0, 1]."""
    _check_eps(eps)
    return (x + eps * _input_gradient(fn, x, y).sign()).clamp(0.0, 1.0).detach()


def pgd(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    eps: float,
    step_size: float,
    steps: int,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Untargeted L_inf PGD maximizing cross-entropy; x_adv stays in the eps-ball and [0, 1].

    x: (N, C, H, W) images in [0, 1]; y: (N,) labels. Only input gradients are computed.
    """
    _check_eps(eps)
    if steps < 1:
        raise ValueError(f"PGD needs steps >= 1, got {steps}")
    x = x.detach()
    x_adv = x
    if random_start:
        noise = torch.rand(x.shape, generator=generator, device="cpu").to(x.device)
        x_adv = (x + eps * (2 * noise - 1)).clamp(0.0, 1.0)
    for _ in range(steps):
        x_adv = x_adv + step_size * _input_gradient(fn, x_adv, y).sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0).detach()
    return x_adv
