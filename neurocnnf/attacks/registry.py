"""The attack registry: every attack's name, function and properties, in one place.

``evaluate``, the robustness runner's plan and checks, the CLI's ``--attacks`` help, the masking
report (white- vs black-box) and the tests read it; the workflow schema's attack enum is checked
against it by ``tests/test_attacks.py``. To add an attack: write its function (here, or in its
own module under ``neurocnnf/attacks/``), add one ``register_attack(...)`` call at the bottom of
this file, and add its name to the ``robustness.attacks`` enum of
``workflows/schemas/config.schema.yaml``.

An attack function takes an :class:`AttackCall` and returns adversarial images of ``call.x``'s
shape, within ``call.spec.eps`` (L_inf, pixel scale) of ``call.x`` and in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from neurocnnf.attacks.autoattack import apgd_ce, apgd_dlr, apgd_t, square
from neurocnnf.attacks.pgd import fgsm, logits_fn, pgd
from neurocnnf.attacks.spsa import spsa
from neurocnnf.models.protocol import FeedbackModel
from neurocnnf.plugins import ATTACKS as ATTACK_PLUGINS
from neurocnnf.plugins import load_plugins

Target = Literal["first", "e2e"]


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
        if self.attack != "clean" and self.attack not in ATTACKS:
            raise ValueError(f"unknown attack {self.attack!r}; choose from "
                             f"{('clean', *ATTACKS)}")
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


ATTACKS: dict[str, Attack] = {}


def register_attack(attack: Attack) -> Attack:
    """Add ``attack`` to the registry (a name registered twice is an error)."""
    if attack.name == "clean" or attack.name in ATTACKS:
        raise ValueError(f"attack name {attack.name!r} is taken")
    if attack.box not in ("white", "black"):
        raise ValueError(f"{attack.name}: box must be 'white' or 'black', got {attack.box!r}")
    ATTACKS[attack.name] = attack
    return attack


def get_attack(name: str) -> Attack:
    """The registered attack called ``name`` (ValueError naming the choices otherwise)."""
    if name not in ATTACKS:
        load_plugins(ATTACK_PLUGINS)
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
    return ATTACKS[name]


def attack_names(box: str | None = None) -> tuple[str, ...]:
    """Registered names in registration order ('white' / 'black': only that kind), plug-ins
    (entry point ``neurocnnf.attacks``) included."""
    load_plugins(ATTACK_PLUGINS)
    return tuple(n for n, a in ATTACKS.items() if box is None or a.box == box)


def _fgsm(call: AttackCall) -> Tensor:
    return fgsm(call.logits(), call.x, call.y, call.spec.eps)


def _pgd_on(fn: Callable[[Tensor], Tensor], call: AttackCall) -> Tensor:
    step_size = call.spec.step_size or 2.5 * call.spec.eps / call.steps
    return pgd(fn, call.x, call.y, call.spec.eps, step_size, call.steps,
               generator=call.generator)


def _pgd(call: AttackCall) -> Tensor:
    return _pgd_on(call.logits(), call)


def _transfer(call: AttackCall) -> Tensor:
    if call.twin is None:
        raise ValueError("the transfer attack needs the plain-CNN twin (twin=...)")
    return _pgd_on(logits_fn(call.twin, "first"), call)


def _spsa(call: AttackCall) -> Tensor:
    return spsa(call.logits(), call.x, call.y, call.spec.eps, steps=call.steps,
                generator=call.generator)


register_attack(Attack("fgsm", _fgsm, "white", 1, on_grid=True, targets=(),
                       description="fast gradient sign"))
register_attack(Attack("pgd", _pgd, "white", 40, on_grid=True, restartable=True,
                       description="L_inf PGD with random start"))
register_attack(Attack("spsa", _spsa, "black", 20, targets=("first", "e2e"),
                       description="gradient-free SPSA (Uesato et al. 2018)"))
register_attack(Attack("apgd-ce", apgd_ce, "white", 100,
                       description="AutoAttack's APGD, cross-entropy"))
register_attack(Attack("apgd-dlr", apgd_dlr, "white", 100,
                       description="AutoAttack's APGD, DLR loss (untargeted)"))
register_attack(Attack("apgd-t", apgd_t, "white", 100,
                       description="AutoAttack's targeted APGD"))
register_attack(Attack("square", square, "black", 1000,
                       description="Square (queries as steps)"))
register_attack(Attack("transfer", _transfer, "black", 40, needs_twin=True, targets=("first",),
                       restartable=True, description="PGD examples of the plain-CNN twin"))
