"""APGD-CE, APGD-DLR, APGD-T and Square from torchattacks 3.5.1 (the ``attacks`` extra), aimed
at what is scored. torchattacks is imported when one of them runs, never at module import."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from neurocnnf.attacks.pgd import logits_fn
from neurocnnf.models.protocol import FeedbackModel

if TYPE_CHECKING:
    from neurocnnf.attacks.registry import AttackCall

TORCHATTACKS_MISSING = (
    "APGD-CE, APGD-T and Square need torchattacks, the `attacks` extra: install it with "
    "`pip install --no-deps torchattacks==3.5.1` (make install does; `pip install "
    "'neurocnnf[attacks]'` also pulls the torchvision and requests its metadata asks for)")


class ScoredModel(nn.Module):
    """images -> the logits an attack aims at (a plain nn.Module, e.g. for torchattacks)."""

    def __init__(self, model: FeedbackModel, target: str, scoring: str,
                 iterations: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.logits = logits_fn(model, target, scoring, iterations)

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(x)


def torchattacks_available() -> bool:
    """Whether torchattacks can be imported here."""
    try:
        import torchattacks  # noqa: F401
    except ImportError:
        return False
    return True


def _torchattacks():
    try:
        import torchattacks
    except ImportError:
        raise ImportError(TORCHATTACKS_MISSING) from None
    return torchattacks


def _setup(call: AttackCall) -> tuple[nn.Module, int]:
    wrapped = ScoredModel(call.model, call.spec.target, call.scoring, call.iterations).eval()
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=call.generator))
    return wrapped, seed


def apgd_ce(call: AttackCall) -> Tensor:
    """APGD with the cross-entropy loss (``call.steps`` steps)."""
    attacks = _torchattacks()
    wrapped, seed = _setup(call)
    attack = attacks.APGD(wrapped, eps=call.spec.eps, steps=call.steps,
                          n_restarts=call.spec.restarts, loss="ce", seed=seed)
    return attack(call.x, call.y).detach()


def apgd_dlr(call: AttackCall) -> Tensor:
    """APGD with the (untargeted) DLR loss, AutoAttack's second attack (``call.steps`` steps)."""
    attacks = _torchattacks()
    wrapped, seed = _setup(call)
    attack = attacks.APGD(wrapped, eps=call.spec.eps, steps=call.steps,
                          n_restarts=call.spec.restarts, loss="dlr", seed=seed)
    return attack(call.x, call.y).detach()


def apgd_t(call: AttackCall) -> Tensor:
    """Targeted APGD (DLR loss) over every other class (``call.steps`` steps)."""
    attacks = _torchattacks()
    wrapped, seed = _setup(call)
    attack = attacks.APGDT(wrapped, eps=call.spec.eps, steps=call.steps,
                           n_restarts=call.spec.restarts, n_classes=call.model.num_classes,
                           seed=seed)
    return attack(call.x, call.y).detach()


def square(call: AttackCall) -> Tensor:
    """Square attack with ``call.steps`` queries."""
    attacks = _torchattacks()
    wrapped, seed = _setup(call)
    attack = attacks.Square(wrapped, eps=call.spec.eps, n_queries=call.steps,
                            n_restarts=call.spec.restarts, seed=seed)
    return attack(call.x, call.y).detach()
