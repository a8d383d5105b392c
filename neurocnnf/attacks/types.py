"""The attack layer's data types: an attack setting (:class:`AttackSpec`), what an attack
function gets for one batch (:class:`AttackCall`) and a registered attack (:class:`Attack`).

The algorithms (``pgd``, ``spsa``, ``autoattack``) need none of these; the registry and the
evaluation loop share them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from neurocnnf.attacks.pgd import Target, logits_fn
from neurocnnf.models.protocol import FeedbackModel


@dataclass(frozen=True)
class AttackSpec:
    """One attack setting. ``steps``: the attack's own steps, gradient steps or queries (0: its
    default), never the model's iterations; eps in pixel scale; target 'first' (the plain first
    pass) or 'e2e' (through all iterations, aimed at the scored logits). 'clean' is the
    unattacked baseline."""

    attack: str
    eps: float = 0.0
    target: str = "e2e"
    steps: int = 0
    restarts: int = 1
    step_size: float | None = None  # PGD: default 2.5 * eps / steps

    def __post_init__(self) -> None:
        if self.attack != "clean":
            from neurocnnf.attacks.registry import attack_names  # (the registry imports this)

            if self.attack not in attack_names():
                raise ValueError(f"unknown attack {self.attack!r}; choose from "
                                 f"{('clean', *attack_names())}")
        if not 0.0 <= self.eps <= 1.0:
            raise ValueError(f"eps must be in [0, 1] (pixel scale), got {self.eps}")
        if self.target not in ("first", "e2e"):
            raise ValueError(f"unknown attack target {self.target!r}: use 'first' or 'e2e'")


@dataclass(frozen=True)
class AttackCall:
    """What an attack function gets for one batch.

    x: float (N, C, H, W) in [0, 1]; y: (N,) labels; scoring: the logits scored ('last' or
    'avg'); iterations: T of the scored model; generator: the batch's seeded random source;
    twin: the plain-CNN twin (for attacks that need one, else None); steps: the spec's steps,
    or the attack's default when the spec gives 0.
    """

    spec: AttackSpec
    model: FeedbackModel
    x: Tensor
    y: Tensor
    scoring: str
    iterations: int
    generator: torch.Generator
    twin: FeedbackModel | None
    steps: int

    def logits(self) -> Callable[[Tensor], Tensor]:
        """images -> the logits the spec's target aims at (N, classes)."""
        return logits_fn(self.model, self.spec.target, self.scoring, self.iterations)


@dataclass(frozen=True)
class Attack:
    """A registered attack.

    box: 'white' (uses gradients) or 'black' (outputs only, or another model's gradients);
    the masking report expects black-box accuracy >= white-box accuracy.
    default_steps: steps when a spec gives 0. needs_twin: uses the plain-CNN twin (transfer).
    on_grid: the robustness plan runs it on the first pass at every eps of the curves;
    targets: what it runs at the table's eps.
    restartable: restarts keep, per image, the first adversarial example that fools the model.
    """

    name: str
    function: Callable[[AttackCall], Tensor]
    box: Literal["white", "black"]
    default_steps: int
    needs_twin: bool = False
    on_grid: bool = False
    targets: tuple[Target, ...] = ("e2e",)
    restartable: bool = False
    description: str = ""
