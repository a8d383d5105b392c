"""Paired comparisons of two models attacked on the same images: CNN-F minus its CNN twin with
a confidence interval and an exact test, from per-image correctness.

Two accuracies measured on the same images are correlated, so their difference is known far
better than two separate binomial intervals suggest: what counts is how many images one model
gets right and the other wrong (b and c below). ``evaluate`` keeps each row's per-image
correctness as text (``pack``) in the ``correct`` column, so that every table it writes
can be compared this way later.

Needs pandas (the ``analysis`` extra) for ``paired_table``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neurocnnf.extras import require

if TYPE_CHECKING:
    import pandas as pd
    from torch import Tensor

CORRECT = "correct"  # the results column of packed per-image correctness


def pack(correct: Tensor | np.ndarray) -> str:
    """(N,) bool per image -> text 'N:HEX', 8 images per byte in image order (numpy
    ``packbits``). The count and colon keep CSV readers from taking it for a number."""
    correct = np.asarray(correct, dtype=bool)
    return f"{len(correct)}:{np.packbits(correct).tobytes().hex()}"


def unpack(text: str) -> np.ndarray:
    """Text from ``pack`` -> (N,) bool. Raises ValueError for text ``pack`` did not write."""
    count, _, digits = str(text).partition(":")
    try:
        n = int(count)
        bits = np.unpackbits(np.frombuffer(bytes.fromhex(digits), dtype=np.uint8))
    except ValueError as error:
        raise ValueError(f"not packed per-image correctness ('N:HEX'): {text!r:.40}") from error
    if n < 0 or len(bits) != 8 * -(-n // 8) or bits[n:].any():
        raise ValueError(f"packed per-image correctness says {n} images but holds "
                         f"{len(bits)} bits: {text!r:.40}")
    return bits[:n].astype(bool)


@dataclass(frozen=True)
class PairedDifference:
    """Accuracy of A minus accuracy of B on the same n images, in [-1, 1].

    ``only_a`` / ``only_b``: images only A / only B gets right (McNemar's b and c);
    ``low``/``high``: Newcombe's interval at ``level``; ``p``: exact McNemar test, two-sided.
    """

    difference: float
    low: float
    high: float
    p: float
    only_a: int
    only_b: int
    n: int
    level: float


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    from scipy import stats  # here, not at import: evaluate imports this module for ``pack``

    z = stats.norm.ppf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> PairedDifference:
    """Accuracy of A minus B from per-image correctness ``a``, ``b`` ((N,) bool, same images).

    Interval: Newcombe (1998), method 10, as worked in Altman et al., *Statistics with
    Confidence* (2000), sec. 6 (Wilson intervals of both accuracies, combined with their
    correlation over images); it stays inside [-1, 1] and keeps close to nominal coverage down
    to small n. Test: exact McNemar (binomial on the discordant images).
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired_difference needs two (N,) correctness vectors over the same "
                         f"images, N >= 1; got shapes {a.shape} and {b.shape}")
    n = len(a)
    both, only_a = int((a & b).sum()), int((a & ~b).sum())
    only_b, neither = int((~a & b).sum()), int((~a & ~b).sum())
    p1, p2 = (both + only_a) / n, (both + only_b) / n
    (l1, u1), (l2, u2) = wilson(both + only_a, n, level), wilson(both + only_b, n, level)
    # their correlation, with Newcombe's correction: a positive AD - BC is lowered by n/2
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    cross = both * neither - only_a * only_b
    cross = max(cross - n / 2, 0.0) if cross > 0 else cross
    phi = cross / math.sqrt(margins) if margins else 0.0
    difference = p1 - p2
    low = difference - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)
                                     + (u2 - p2) ** 2))
    high = difference + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2)
                                      + (p2 - l2) ** 2))
    discordant = only_a + only_b
    p = stats.binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
    return PairedDifference(difference, low, high, float(p), only_a, only_b, n, level)


def paired_table(results: pd.DataFrame, eps: float, level: float = 0.95) -> pd.DataFrame:
    """Each CNN-F model minus its twin (the ``twin`` column), per attack setting at ``eps``
    and clean, on the same images: one row per (model, scoring, attack, target, steps) with
    the difference in percentage points, its interval and McNemar's p.

    The twin's row for an attack is its own row of the same attack and steps (a CNN's first
    pass is its end-to-end pass, so any target); the per-image worst case compares worst cases.
    Rows without per-image correctness (older results) or without a twin ('' or missing) are
    left out.
    """
    pd = require("pandas", "analysis", "paired comparisons")
    if CORRECT not in results or "twin" not in results:
        return pd.DataFrame()
    at = results[((results["eps"] == eps) | (results["attack"] == "clean"))
                 & results[CORRECT].notna()]
    rows = []
    for _, row in at[(at["iterations"] > 0) & (at["twin"].fillna("") != "")].iterrows():
        twin = at[(at["model"] == row["twin"]) & (at["attack"] == row["attack"])
                  & (at["steps"] == row["steps"])]
        if twin.empty or int(twin["n"].iloc[0]) != int(row["n"]):
            continue
        found = paired_difference(unpack(row[CORRECT]), unpack(twin[CORRECT].iloc[0]), level)
        rows.append({"model": row["model"], "twin": row["twin"], "scoring": row["scoring"],
                     "attack": row["attack"], "target": row["target"], "steps": row["steps"],
                     "eps": row["eps"], "n": found.n, "difference_pp": 100 * found.difference,
                     "low_pp": 100 * found.low, "high_pp": 100 * found.high,
                     "only_model": found.only_a, "only_twin": found.only_b,
                     "mcnemar_p": found.p})
    return pd.DataFrame(rows)


SETTING = ["scoring", "attack", "target", "steps", "eps"]  # one attack setting of a table


def over_models(table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """``paired_table``'s differences summarised over its CNN-F models (seeds, each against its
    own twin), per attack setting with at least two models: ``models``, ``mean_pp``,
    ``sd_pp``, the t interval ``low_pp``/``high_pp`` and the one-sample t test's ``t_p``
    (df = models - 1).

    The per-image intervals of ``paired_table`` hold for the checkpoints at hand; this one
    also counts how much the difference moves from seed to seed, which is what a claim about
    a training recipe needs. With two or three seeds it is wide: that is the honest width.
    """
    pd = require("pandas", "analysis", "paired comparisons")
    from scipy import stats

    rows = []
    for setting, group in table.groupby(SETTING, sort=False, dropna=False):
        values = group["difference_pp"].to_numpy(dtype=float)
        if len(values) < 2:
            continue
        mean, sd = float(values.mean()), float(values.std(ddof=1))
        test = stats.ttest_1samp(values, 0.0)
        interval = test.confidence_interval(level)
        p = 1.0 if sd == 0 and mean == 0 else float(test.pvalue)
        rows.append({**dict(zip(SETTING, setting, strict=True)), "models": len(values),
                     "mean_pp": mean, "sd_pp": sd, "low_pp": float(interval.low),
                     "high_pp": float(interval.high), "t_p": p})
    return pd.DataFrame(rows)


def paired_markdown(table: pd.DataFrame, level: float = 0.95) -> str:
    """``paired_table`` as a markdown table: 'difference [low, high]' in pp, and McNemar's p;
    then, with several CNN-F models, ``over_models``' summary over them."""
    if table.empty:
        return ""
    lines = [f"CNN-F minus its twin on the same images (pp, {level:.0%} interval, Newcombe; "
             "exact McNemar p):", "",
             "| model | scoring | attack | target | steps | difference | only CNN-F / only twin "
             "right | p |", "|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['model']} | {r['scoring']} | {r['attack']} | {r['target']} | "
                     f"{r['steps']} | {r['difference_pp']:+.1f} [{r['low_pp']:+.1f}, "
                     f"{r['high_pp']:+.1f}] | {r['only_model']} / {r['only_twin']} | "
                     f"{r['mcnemar_p']:.3g} |")
    summary = over_models(table, level)
    if not summary.empty:
        lines += ["", f"Over the CNN-F models (seeds), each minus its own twin (pp: mean ± sd, "
                  f"{level:.0%} t interval over models; one-sample t test):", "",
                  "| scoring | attack | target | steps | models | mean ± sd | interval | p |",
                  "|---|---|---|---|---|---|---|---|"]
        for _, r in summary.iterrows():
            lines.append(f"| {r['scoring']} | {r['attack']} | {r['target']} | {r['steps']} | "
                         f"{r['models']} | {r['mean_pp']:+.1f} ± {r['sd_pp']:.1f} | "
                         f"[{r['low_pp']:+.1f}, {r['high_pp']:+.1f}] | {r['t_p']:.3g} |")
    return "\n".join(lines)
