"""AutoAttack's APGD (cross-entropy, DLR, targeted DLR) and Square, L_inf, in plain torch.

A port of torchattacks 3.5.1's ``APGD``, ``APGDT`` and ``Square`` (MIT licence; they follow
Croce & Hein's auto-attack, ICML 2020 and ECCV 2020) restricted to what neurocnnf runs: the
L_inf norm, one EOT sample, the ``cheap`` restart scheme, the margin loss for Square. Given
the same seed it returns exactly torchattacks' images (``tests/test_autoattack_parity.py``);
unlike torchattacks it draws from its own ``torch.Generator`` and leaves the global random
state alone. torchattacks itself is not a dependency: its metadata pins requests 2.25 and
pulls torchvision, which would replace a CPU torch.

The ``run_*`` functions take ``logits``: images (N, C, H, W) in [0, 1] -> (N, classes), the
logits the attack aims at; ``eps`` is in pixel scale; the images returned lie within it and in
[0, 1]. The registry (``attacks.registry``) calls them with the logits of an attack spec.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Logits = Callable[[Tensor], Tensor]
Loss = Callable[[Tensor, Tensor], Tensor]


def _dlr(z: Tensor, y: Tensor) -> Tensor:
    """Difference of logits ratio (untargeted), per image."""
    z_sorted, ind_sorted = z.sort(dim=1)
    ind = (ind_sorted[:, -1] == y).float()
    rows = torch.arange(z.shape[0])
    return -(z[rows, y] - z_sorted[:, -2] * ind - z_sorted[:, -1] * (1.0 - ind)) / (
        z_sorted[:, -1] - z_sorted[:, -3] + 1e-12)


def _dlr_targeted(y_target: Tensor) -> Loss:
    """The targeted DLR loss towards ``y_target``, per image."""
    def loss(z: Tensor, y: Tensor) -> Tensor:
        z_sorted, _ = z.sort(dim=1)
        rows = torch.arange(z.shape[0])
        return -(z[rows, y] - z[rows, y_target]) / (
            z_sorted[:, -1] - 0.5 * z_sorted[:, -3] - 0.5 * z_sorted[:, -4] + 1e-12)
    return loss


def _oscillates(losses: np.ndarray, j: int, k: int, rho: float) -> np.ndarray:
    """Per image: did the loss rise in at most ``rho`` of the last ``k`` steps?"""
    rises = np.zeros(losses.shape[1])
    for back in range(k):
        rises += losses[j - back] > losses[j - back - 1]
    return rises <= k * rho * np.ones(rises.shape)


def _loss_and_grad(logits: Logits, x_adv: Tensor, y: Tensor, loss_fn: Loss
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """(per-image loss, its gradient w.r.t. x_adv, the logits), x_adv requiring grad."""
    with torch.enable_grad():
        z = logits(x_adv)
        loss_indiv = loss_fn(z, y)
        grad = torch.autograd.grad(loss_indiv.sum(), [x_adv])[0].detach()
    return loss_indiv, grad, z


def _apgd_run(logits: Logits, x: Tensor, y: Tensor, eps: float, steps: int, loss_fn: Loss,
              generator: torch.Generator, rho: float = 0.75) -> tuple[Tensor, Tensor]:
    """One APGD run: (still correct per image, the adversarial images found)."""
    device = x.device
    steps_2, steps_min, size_decr = (max(int(0.22 * steps), 1), max(int(0.06 * steps), 1),
                                     max(int(0.03 * steps), 1))
    t = (2 * torch.rand(x.shape, generator=generator) - 1).to(device)
    x_adv = x + eps * torch.ones([x.shape[0], 1, 1, 1], device=device) * t / (
        t.reshape([t.shape[0], -1]).abs().max(dim=1, keepdim=True)[0].reshape([-1, 1, 1, 1]))
    x_adv = x_adv.clamp(0.0, 1.0)
    x_best, x_best_adv = x_adv.clone(), x_adv.clone()
    loss_steps = torch.zeros([steps, x.shape[0]])

    x_adv.requires_grad_()
    loss_indiv, grad, z = _loss_and_grad(logits, x_adv, y, loss_fn)
    grad_best = grad.clone()
    acc = z.detach().max(1)[1] == y
    loss_best = loss_indiv.detach().clone()

    step_size = eps * torch.ones([x.shape[0], 1, 1, 1], device=device) * torch.tensor(
        [2.0], device=device).reshape([1, 1, 1, 1])
    x_adv_old = x_adv.clone()
    k = steps_2
    u = np.arange(x.shape[0])
    counter3 = 0
    loss_best_last_check = loss_best.clone()
    reduced_last_check = np.ones(loss_best.shape, dtype=bool)

    for i in range(steps):
        with torch.no_grad():
            x_adv = x_adv.detach()
            grad2 = x_adv - x_adv_old
            x_adv_old = x_adv.clone()
            a = 0.75 if i > 0 else 1.0
            x_adv_1 = x_adv + step_size * torch.sign(grad)
            x_adv_1 = torch.clamp(torch.min(torch.max(x_adv_1, x - eps), x + eps), 0.0, 1.0)
            x_adv_1 = torch.clamp(torch.min(torch.max(
                x_adv + (x_adv_1 - x_adv) * a + grad2 * (1 - a), x - eps), x + eps), 0.0, 1.0)
            x_adv = x_adv_1 + 0.0

        x_adv.requires_grad_()
        loss_indiv, grad, z = _loss_and_grad(logits, x_adv, y, loss_fn)
        pred = z.detach().max(1)[1] == y
        acc = torch.min(acc, pred)
        fooled = (pred == 0).nonzero().squeeze()
        x_best_adv[fooled] = x_adv[fooled] + 0.0

        with torch.no_grad():
            y1 = loss_indiv.detach().clone()
            loss_steps[i] = y1.cpu() + 0
            ind = (y1 > loss_best).nonzero().squeeze()
            x_best[ind] = x_adv[ind].clone()
            grad_best[ind] = grad[ind].clone()
            loss_best[ind] = y1[ind] + 0
            counter3 += 1
            if counter3 == k:
                halve = _oscillates(loss_steps.detach().cpu().numpy(), i, k, rho)
                no_gain = (~reduced_last_check) * (
                    loss_best_last_check.cpu().numpy() >= loss_best.cpu().numpy())
                halve = ~(~halve * ~no_gain)
                reduced_last_check = np.copy(halve)
                loss_best_last_check = loss_best.clone()
                if np.sum(halve) > 0:
                    step_size[u[halve]] /= 2.0
                    where = np.where(halve)
                    x_adv[where] = x_best[where].clone()
                    grad[where] = grad_best[where].clone()
                counter3 = 0
                k = np.maximum(k - size_decr, steps_min)
    return acc, x_best_adv


def _restarts(logits: Logits, x: Tensor, y: Tensor, acc: Tensor, adv: Tensor, restarts: int,
              run: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]) -> None:
    """Rerun ``run`` on the images still classified correctly, keeping what fools (in place)."""
    for _ in range(restarts):
        to_fool = acc.nonzero().squeeze()
        if len(to_fool.shape) == 0:
            to_fool = to_fool.unsqueeze(0)
        if to_fool.numel() == 0:
            continue
        acc_curr, adv_curr = run(x[to_fool].clone(), y[to_fool].clone())
        fooled = (acc_curr == 0).nonzero().squeeze()
        acc[to_fool[fooled]] = 0
        adv[to_fool[fooled]] = adv_curr[fooled].clone()


def run_apgd(logits: Logits, x: Tensor, y: Tensor, eps: float, steps: int, restarts: int = 1,
         seed: int = 0, loss: str = "ce") -> Tensor:
    """APGD with the cross-entropy (``loss='ce'``) or DLR (``'dlr'``) loss; x (N, C, H, W)."""
    loss_fn = {"ce": lambda z, t: F.cross_entropy(z, t, reduction="none"), "dlr": _dlr}[loss]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        acc = logits(x).max(1)[1] == y
    adv = x.clone()
    _restarts(logits, x, y, acc, adv, restarts,
              lambda xs, ys: _apgd_run(logits, xs, ys, eps, steps, loss_fn, generator))
    return adv


def run_apgd_targeted(logits: Logits, x: Tensor, y: Tensor, eps: float, steps: int,
                  n_classes: int, restarts: int = 1, seed: int = 0) -> Tensor:
    """Targeted APGD (DLR loss) towards each of the ``n_classes - 1`` runner-up classes in
    turn, on the images not fooled yet; x (N, C, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        acc = logits(x).max(1)[1] == y
    adv = x.clone()

    def run(target_rank: int) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]:
        def one(xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
            with torch.no_grad():
                y_target = logits(xs).sort(dim=1)[1][:, -target_rank]
            return _apgd_run(logits, xs, ys, eps, steps, _dlr_targeted(y_target), generator)
        return one

    for target_rank in range(2, n_classes + 1):
        _restarts(logits, x, y, acc, adv, restarts, run(target_rank))
    return adv


def _margin(logits: Logits, x: Tensor, y: Tensor) -> Tensor:
    """Correct-class logit minus the largest other logit, per image."""
    z = logits(x)
    rows = torch.arange(x.shape[0])
    correct = z[rows, y].clone()
    z[rows, y] = -float("inf")
    return correct - z.max(dim=-1)[0]


def _p_selection(p_init: float, i: int, queries: int) -> float:
    """Square's schedule of the fraction of pixels changed at query ``i``."""
    it = int(i / queries * 10000)
    for bound, divisor in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32),
                           (4000, 64), (6000, 128), (8000, 256)):
        if it <= bound:
            return p_init / divisor
    return p_init / 512


def _sign(shape: list[int], generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.sign(2 * torch.rand(shape, generator=generator) - 1).to(device)


def _square_run(logits: Logits, x: Tensor, y: Tensor, eps: float, queries: int,
                generator: torch.Generator, p_init: float = 0.8) -> Tensor:
    """One Square run (margin loss): the adversarial images found."""
    device = x.device
    c, h, w = x.shape[1:]
    n_features = c * h * w
    x_best = torch.clamp(x + eps * _sign([x.shape[0], c, 1, w], generator, device), 0.0, 1.0)
    margin_min = _margin(logits, x_best, y)
    loss_min = margin_min.clone()
    for i in range(queries):
        idx = (margin_min > 0.0).nonzero().flatten()
        if len(idx) == 0:
            break
        x_curr, x_best_curr, y_curr = x[idx], x_best[idx], y[idx]
        margin_min_curr, loss_min_curr = margin_min[idx], loss_min[idx]
        s = max(int(round(math.sqrt(_p_selection(p_init, i, queries) * n_features / c))), 1)
        vh = (0 + (h - s - 0) * torch.rand([1], generator=generator)).long()
        vw = (0 + (w - s - 0) * torch.rand([1], generator=generator)).long()
        new_deltas = torch.zeros([c, h, w], device=device)
        new_deltas[:, vh:vh + s, vw:vw + s] = 2.0 * eps * _sign([c, 1, 1], generator, device)
        x_new = torch.clamp(torch.min(torch.max(x_best_curr + new_deltas, x_curr - eps),
                                      x_curr + eps), 0.0, 1.0)
        margin = _margin(logits, x_new, y_curr)
        improved = (margin < loss_min_curr).float()
        loss_min[idx] = improved * margin + (1.0 - improved) * loss_min_curr
        improved = torch.max(improved, (margin <= 0.0).float())
        margin_min[idx] = improved * margin + (1.0 - improved) * margin_min_curr
        improved = improved.reshape([-1, *[1] * len(x.shape[:-1])])
        x_best[idx] = improved * x_new + (1.0 - improved) * x_best_curr
        if (margin_min <= 0.0).sum() == x.shape[0]:
            break
    return x_best


def run_square(logits: Logits, x: Tensor, y: Tensor, eps: float, queries: int, restarts: int = 1,
           seed: int = 0) -> Tensor:
    """The Square attack (score-based, ``queries`` queries per image); x (N, C, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        acc = logits(x).max(1)[1] == y
        adv = x.clone()

        def run(xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
            found = _square_run(logits, xs, ys, eps, queries, generator)
            return logits(found).max(1)[1] == ys, found

        _restarts(logits, x, y, acc, adv, restarts, run)
    return adv
