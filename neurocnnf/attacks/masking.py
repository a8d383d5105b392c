"""Gradient-masking checks (Athalye et al. 2018) on robustness evaluation results.

Needs pandas (the ``analysis`` extra), imported when the report is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neurocnnf.attacks.registry import attack_names
from neurocnnf.extras import require

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Check:
    """One check: its name, whether it passed, and the numbers it compared."""

    name: str
    passed: bool
    detail: str


def masking_report(results: pd.DataFrame, tolerance: float = 0.01) -> list[Check]:
    """Gradient-masking checks on the tidy results of ``evaluate``.

    1. PGD accuracy <= FGSM accuracy (same model, scoring, target, eps);
    2. more PGD steps never raise accuracy;
    3. accuracy goes to ~0 (<= 5%) at the largest eps tried (>= 0.3) under white-box attack;
    4. black-box accuracy >= the lowest white-box accuracy (white/black: the registry's).
    ``tolerance``: accuracy slack (sampling noise) before a check fails.
    Each check compares one series: one model (label, name, test iterations), one scoring.
    """
    pd = require("pandas", "analysis", "the gradient-masking report")
    checks = []
    model_keys = ["label", "model", "iterations"]
    keys = [*model_keys, "scoring", "target", "eps"]
    pgd_rows = results[results["attack"] == "pgd"]
    for key, group in pgd_rows.groupby(keys):
        fgsm_rows = results[(results["attack"] == "fgsm")
                            & (results[keys] == pd.Series(key, index=keys)).all(axis=1)]
        label = "{} {} {} eps={}".format(_series_name(*key[:3]), *key[3:])
        if not fgsm_rows.empty:
            pgd_acc, fgsm_acc = group["accuracy"].min(), fgsm_rows["accuracy"].min()
            checks.append(Check("PGD <= FGSM", pgd_acc <= fgsm_acc + tolerance,
                                f"{label}: PGD {pgd_acc:.3f} vs FGSM {fgsm_acc:.3f}"))
        by_steps = group.sort_values("steps")
        if by_steps["steps"].nunique() > 1:
            increases = np.diff(by_steps["accuracy"].to_numpy())
            checks.append(Check("more steps never help", bool((increases <= tolerance).all()),
                                f"{label}: steps {list(by_steps['steps'])} -> accuracy "
                                f"{[round(a, 3) for a in by_steps['accuracy']]}"))
    white = results[results["attack"].isin(attack_names("white"))]
    for key, group in white.groupby([*model_keys, "scoring"]):
        largest = group["eps"].max()
        if largest >= 0.3:
            acc = group[group["eps"] == largest]["accuracy"].min()
            checks.append(Check("large eps -> ~0", acc <= 0.05,
                                f"{_series_name(*key[:3])} {key[3]}: white-box accuracy "
                                f"{acc:.3f} at eps {largest}"))
    black = results[results["attack"].isin(attack_names("black"))]
    keys = [*model_keys, "scoring", "eps"]
    for key, group in black.groupby(keys):
        same = white[(white[keys] == pd.Series(key, index=keys)).all(axis=1)]
        if not same.empty:
            worst_white, worst_black = same["accuracy"].min(), group["accuracy"].min()
            which = group.loc[group["accuracy"].idxmin(), "attack"]
            checks.append(Check("black-box >= white-box", worst_black >= worst_white - tolerance,
                                f"{_series_name(*key[:3])} {key[3]} eps={key[4]}: {which} "
                                f"{worst_black:.3f} vs white-box {worst_white:.3f}"))
    return checks


def _series_name(label: str, model: str, iterations: int) -> str:
    return f"{model}{'' if label == model else f' ({label})'} T={iterations}"


def format_report(checks: list[Check]) -> str:
    """The report as text, one line per check."""
    if not checks:
        return "gradient-masking report: no checks applicable (add FGSM/PGD/black-box runs)"
    lines = [f"[{'PASS' if c.passed else 'FAIL'}] {c.name}: {c.detail}" for c in checks]
    failed = sum(not c.passed for c in checks)
    verdict = "no sign of gradient masking" if not failed else \
        f"{failed} check(s) failed: robustness numbers may be overestimated"
    return "gradient-masking report\n" + "\n".join(lines) + f"\n=> {verdict}"
