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

import torch
from torch import Tensor

from neurocnnf.attacks.autoattack import run_apgd, run_apgd_targeted, run_square
from neurocnnf.attacks.pgd import fgsm, logits_fn, pgd
from neurocnnf.attacks.spsa import spsa
from neurocnnf.attacks.types import Attack, AttackCall, AttackSpec, Target
from neurocnnf.plugins import ATTACKS as ATTACK_PLUGINS
from neurocnnf.plugins import load_plugins

__all__ = ["ATTACKS", "Attack", "AttackCall", "AttackSpec", "Target", "attack_names",
           "get_attack", "register_attack"]

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


def _aimed(call: AttackCall) -> tuple[Callable[[Tensor], Tensor], int]:
    """The logits the call aims at, and the run's seed drawn from the batch's generator."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=call.generator))
    return logits_fn(call.model, call.spec.target, call.scoring, call.iterations), seed


def _apgd_ce(call: AttackCall) -> Tensor:
    """APGD with the cross-entropy loss (``call.steps`` steps)."""
    logits, seed = _aimed(call)
    return run_apgd(logits, call.x, call.y, call.spec.eps, call.steps, call.spec.restarts, seed,
                    "ce").detach()


def _apgd_dlr(call: AttackCall) -> Tensor:
    """APGD with the (untargeted) DLR loss, AutoAttack's second attack (``call.steps`` steps)."""
    logits, seed = _aimed(call)
    return run_apgd(logits, call.x, call.y, call.spec.eps, call.steps, call.spec.restarts, seed,
                    "dlr").detach()


def _apgd_t(call: AttackCall) -> Tensor:
    """Targeted APGD (DLR loss) over every other class (``call.steps`` steps)."""
    logits, seed = _aimed(call)
    return run_apgd_targeted(logits, call.x, call.y, call.spec.eps, call.steps,
                             call.model.num_classes, call.spec.restarts, seed).detach()


def _square(call: AttackCall) -> Tensor:
    """Square attack with ``call.steps`` queries."""
    logits, seed = _aimed(call)
    return run_square(logits, call.x, call.y, call.spec.eps, call.steps, call.spec.restarts,
                      seed).detach()


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
register_attack(Attack("apgd-ce", _apgd_ce, "white", 100,
                       description="AutoAttack's APGD, cross-entropy"))
register_attack(Attack("apgd-dlr", _apgd_dlr, "white", 100,
                       description="AutoAttack's APGD, DLR loss (untargeted)"))
register_attack(Attack("apgd-t", _apgd_t, "white", 100,
                       description="AutoAttack's targeted APGD"))
register_attack(Attack("square", _square, "black", 1000,
                       description="Square (queries as steps)"))
register_attack(Attack("transfer", _transfer, "black", 40, needs_twin=True, targets=("first",),
                       restartable=True, description="PGD examples of the plain-CNN twin"))
