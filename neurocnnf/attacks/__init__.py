"""Adversarial attacks on CNN-F, aimed at the first pass or end to end, and their registry.

Importing this package needs only the core dependencies; the evaluation's tables and reports
need the ``analysis`` extra, APGD and Square the ``attacks`` extra.
"""

from neurocnnf.attacks.pgd import fgsm, logits_fn, pgd
from neurocnnf.attacks.registry import ATTACKS, attack_names, get_attack, register_attack
from neurocnnf.attacks.types import Attack, AttackCall, AttackSpec

__all__ = ["ATTACKS", "Attack", "AttackCall", "AttackSpec", "attack_names", "fgsm",
           "get_attack", "logits_fn", "pgd", "register_attack"]
