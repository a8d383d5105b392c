"""Adversarial attacks on CNN-F, aimed at the first pass or end to end."""

from neurocnnf.attacks.pgd import fgsm, logits_fn, pgd

__all__ = ["fgsm", "logits_fn", "pgd"]
