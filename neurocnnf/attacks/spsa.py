"""SPSA (Uesato et al. 2018): a gradient-free L_inf attack from finite differences.

Each step estimates the gradient of the margin loss with ``samples`` random Rademacher
directions (antithetic pairs, perturbation size ``delta``) and takes an Adam step of size
``lr`` on the perturbation, projected onto the eps-ball and the [0, 1] box. It queries only the
model's outputs, so it is blind to masked or obfuscated gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def margin_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """(N,) logit of the true class minus the largest other logit (< 0: misclassified)."""
    true = logits.gather(1, labels[:, None])[:, 0]
    other = logits.clone()
    other.scatter_(1, labels[:, None], float("-inf"))
    return true - other.max(1).values


def spsa_gradient(loss_fn: Callable[[Tensor], Tensor], x: Tensor, delta: float = 0.01,
                  samples: int = 128, generator: torch.Generator | None = None,
                  max_batch: int = 4096) -> Tensor:
    """SPSA estimate of d loss_fn / d x for each sample; loss_fn maps (M, ...) -> (M,).

    x: (N, ...). Uses samples/2 antithetic pairs of Rademacher directions; the N * samples
    probes are evaluated in chunks of at most ``max_batch`` inputs (bounded memory).
    """
    pairs = max(samples // 2, 1)
    n = x.shape[0]
    signs = torch.randint(0, 2, (pairs, *x.shape), generator=generator).to(x.device, x.dtype)
    v = 2 * signs - 1
    probes = torch.cat([x[None] + delta * v, x[None] - delta * v]).reshape(-1, *x.shape[1:])
    chunk = max(n, max_batch // n * n)  # whole copies of the batch, so labels line up
    with torch.no_grad():
        losses = torch.cat([loss_fn(probes[i:i + chunk])
                            for i in range(0, len(probes), chunk)]).reshape(2, pairs, n)
    diff = (losses[0] - losses[1]) / (2 * delta)  # (pairs, N)
    return (diff.reshape(pairs, n, *([1] * (x.dim() - 1))) * v).mean(0)


def spsa(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    eps: float,
    steps: int = 20,
    delta: float = 0.01,
    samples: int = 128,
    lr: float = 0.01,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Untargeted SPSA minimizing the margin; x_adv stays in the eps-ball and [0, 1].

    fn: images -> logits. A sample stops moving once it is misclassified.
    """
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must be in [0, 1] (pixel scale), got {eps}")
    x = x.detach()
    perturbation = torch.zeros_like(x, requires_grad=True)
    optimizer = torch.optim.Adam([perturbation], lr=lr)
    best = x.clone()
    done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

    def loss_of(probes: Tensor) -> Tensor:
        repeats = probes.shape[0] // x.shape[0]
        return margin_loss(fn(probes.clamp(0, 1)), y.repeat(repeats))

    for _ in range(steps):
        current = (x + perturbation.detach()).clamp(0, 1)
        gradient = spsa_gradient(loss_of, current, delta, samples, generator)
        optimizer.zero_grad()
        perturbation.grad = gradient * (~done).to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
        optimizer.step()
        with torch.no_grad():
            perturbation.clamp_(-eps, eps)
            perturbation.copy_((x + perturbation).clamp(0, 1) - x)
            candidate = x + perturbation
            fooled = margin_loss(fn(candidate), y) < 0
            newly = fooled & ~done
            best[newly] = candidate[newly]
            done |= fooled
        if bool(done.all()):
            break
    still = ~done
    best[still] = (x + perturbation.detach())[still]
    return best.detach()
