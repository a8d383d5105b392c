"""The training losses of Table 1, read from a Trace.

Cross-entropy on every pass, averaged over the T+1 passes; reconstruction ||h - g_t(k)||^2 at
layer k and intermediate reconstruction ||f_0(l) - g_t(l)||^2 at the other feedback layers,
averaged over layers and the T feedback passes (the reference implementation's weighting).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from neurocnnf.models import Trace
from neurocnnf.train.config import LossConfig


@dataclass
class LossTerms:
    """The total loss and its parts; ``ce`` and ``reconstruction`` are detached 0-d tensors on
    the loss's device (for logging: reading them as floats waits for the device)."""

    total: Tensor
    ce: Tensor
    reconstruction: Tensor


def reconstruction_loss(
    trace: Trace, taps: tuple[str, ...], config: LossConfig, rows: slice = slice(None),
    target_rows: slice = slice(None),
) -> Tensor:
    """Mean over feedback passes of [recon_weight * ||h - g_t(k)||^2 + inter_weight * sum_l
    ||f_0(l) - g_t(l)||^2] / (1 + L), with MSE averaged over elements.

    ``rows`` selects the samples whose feedback is scored, ``target_rows`` the samples whose
    first-pass features are the targets (adversarial training: adversarial vs clean).
    """
    if trace.iterations == 0:
        return trace.h.new_zeros(())
    total = trace.h.new_zeros(())
    for t, g_k in enumerate(trace.reconstruction):
        total = total + config.recon_weight * F.mse_loss(_take(g_k, rows),
                                                         _take(trace.h, target_rows))
        for name in taps:
            f0, g = trace.forward[name][0], trace.feedback[name][t]
            total = total + config.inter_weight * F.mse_loss(_take(g, rows),
                                                             _take(f0, target_rows))
    return total / ((1 + len(taps)) * trace.iterations)


def _take(x: Tensor, rows: slice) -> Tensor:
    """``x[rows]``, or ``x`` itself for all rows: a full slice costs its backward a zero-filled
    copy of the gradient."""
    return x if rows == slice(None) else x[rows]


def standard_loss(trace: Trace, labels: Tensor, taps: tuple[str, ...], config: LossConfig
                  ) -> LossTerms:
    """Table 1 losses for clean training. labels: (N,) int64."""
    ce = torch.stack([F.cross_entropy(z, labels) for z in trace.logits]).mean()
    rec = reconstruction_loss(trace, taps, config)
    return LossTerms(config.ce_weight * ce + rec, ce.detach(), rec.detach())


def adversarial_loss(trace: Trace, labels: Tensor, taps: tuple[str, ...], config: LossConfig
                     ) -> LossTerms:
    """Sec. 3.2 / Fig. 7 for a trace of the batch [clean; adversarial] (2B samples).

    CE: (clean_weight * CE(clean) + CE(adv)) / 2 per pass, averaged over passes;
    reconstruction of the adversarial feedback toward the clean first-pass features.
    """
    b = labels.shape[0]
    clean, adv = slice(0, b), slice(b, 2 * b)
    ce = torch.stack([
        (config.clean_weight * F.cross_entropy(z[clean], labels) + F.cross_entropy(z[adv], labels))
        / 2 for z in trace.logits
    ]).mean()
    rec = reconstruction_loss(trace, taps, config, rows=adv, target_rows=clean)
    return LossTerms(config.ce_weight * ce + rec, ce.detach(), rec.detach())
