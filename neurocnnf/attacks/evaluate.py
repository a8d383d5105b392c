"""Robustness evaluation: attacks aimed at what is scored, a tidy table, the paper's table and a
gradient-masking report.

Every attack is described by an :class:`AttackSpec`. For a CNN-F, "first" attacks the plain
first pass; "e2e" differentiates through all iterations and aims at the scored logits ("last"
or "avg"). The adversarial images are then scored with that same scoring. eps is in pixel scale.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from neurocnnf.attacks.pgd import fgsm, logits_fn, pgd
from neurocnnf.attacks.spsa import spsa
from neurocnnf.models import CNNF
from neurocnnf.models.engine import check_iterations

WHITE_BOX = ("fgsm", "pgd", "apgd-ce", "apgd-t")
BLACK_BOX = ("spsa", "square", "transfer")
ATTACKS = ("clean",) + WHITE_BOX + BLACK_BOX


@dataclass(frozen=True)
class AttackSpec:
    """One attack setting. ``steps``: PGD/APGD/SPSA iterations or Square queries."""

    attack: str
    eps: float = 0.0
    target: str = "e2e"
    steps: int = 0
    restarts: int = 1
    step_size: float | None = None  # PGD: default 2.5 * eps / steps

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise ValueError(f"unknown attack {self.attack!r}; choose from {ATTACKS}")
        if not 0.0 <= self.eps <= 1.0:
            raise ValueError(f"eps must be in [0, 1] (pixel scale), got {self.eps}")
        if self.target not in ("first", "e2e"):
            raise ValueError(f"unknown attack target {self.target!r}: use 'first' or 'e2e'")


class ScoredModel(nn.Module):
    """images -> the logits an attack aims at (a plain nn.Module, e.g. for torchattacks)."""

    def __init__(self, model: CNNF, target: str, scoring: str) -> None:
        super().__init__()
        self.model, self.target, self.scoring = model, target, scoring

    def forward(self, x: Tensor) -> Tensor:
        return logits_fn(self.model, self.target, self.scoring)(x)


def _torchattacks():
    try:
        import torchattacks
    except ImportError:
        raise ImportError("APGD-CE, APGD-T and Square use torchattacks: install it with "
                          "`pip install --no-deps torchattacks==3.5.1` (make install does)") \
            from None
    return torchattacks


def make_adversarial(spec: AttackSpec, model: CNNF, x: Tensor, y: Tensor, scoring: str,
                     generator: torch.Generator, twin: CNNF | None = None) -> Tensor:
    """Adversarial images for one batch under ``spec`` (clean: the images themselves)."""
    if spec.attack == "clean" or spec.eps == 0:
        return x
    fn = logits_fn(model, spec.target, scoring)
    if spec.attack == "fgsm":
        return fgsm(fn, x, y, spec.eps)
    if spec.attack in ("pgd", "transfer"):
        if spec.attack == "transfer":
            if twin is None:
                raise ValueError("the transfer attack needs the plain-CNN twin (twin=...)")
            fn = logits_fn(twin, "first")
        steps = spec.steps or 40
        step_size = spec.step_size or 2.5 * spec.eps / steps
        return _worst_of_restarts(
            lambda: pgd(fn, x, y, spec.eps, step_size, steps, generator=generator),
            model, x, y, scoring, spec.restarts)
    if spec.attack == "spsa":
        return spsa(fn, x, y, spec.eps, steps=spec.steps or 20, generator=generator)
    attacks = _torchattacks()
    wrapped = ScoredModel(model, spec.target, scoring).eval()
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    if spec.attack == "apgd-ce":
        attack = attacks.APGD(wrapped, eps=spec.eps, steps=spec.steps or 100,
                              n_restarts=spec.restarts, loss="ce", seed=seed)
    elif spec.attack == "apgd-t":
        attack = attacks.APGDT(wrapped, eps=spec.eps, steps=spec.steps or 100,
                               n_restarts=spec.restarts, n_classes=model.num_classes, seed=seed)
    else:
        attack = attacks.Square(wrapped, eps=spec.eps, n_queries=spec.steps or 1000,
                                n_restarts=spec.restarts, seed=seed)
    return attack(x, y).detach()


def _worst_of_restarts(run, model: CNNF, x: Tensor, y: Tensor, scoring: str,
                       restarts: int) -> Tensor:
    """Keep, per sample, the first restart that fools the scored model."""
    best = run()
    for _ in range(restarts - 1):
        correct = predict(model, best, scoring) == y
        if not bool(correct.any()):
            break
        candidate = run()
        best = torch.where(correct.view(-1, *([1] * (x.dim() - 1))), candidate, best)
    return best


MAX_BATCH = 256  # images per model call in evaluation, whatever batch_size the caller asks


@torch.no_grad()
def predict(model: CNNF, x: Tensor, scoring: str = "last",
            iterations: int | None = None) -> Tensor:
    """Predicted labels (N,) under a scoring ('first', 'last' or 'avg').

    The model runs on at most ``MAX_BATCH`` images at a time and keeps no layer activations,
    so memory is bounded whatever N is; only the (N,) labels are kept.
    """
    return torch.cat([model(chunk, iterations=iterations).scored(scoring).argmax(1)
                      for chunk in x.split(MAX_BATCH)])


def evaluate(
    model: CNNF,
    images: Tensor,
    labels: Tensor,
    specs: list[AttackSpec],
    scorings: tuple[str, ...] = ("last", "avg"),
    twin: CNNF | None = None,
    batch_size: int = 256,
    seed: int = 0,
    name: str = "model",
    label: str | None = None,
    iterations: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Accuracy of ``model`` under each attack and scoring; one tidy row per combination.

    images: float (N, C, H, W) in [0, 1]; labels (N,). A model with 0 iterations (a plain
    CNN) is scored once ('last'). ``iterations`` overrides the model's T for this evaluation.
    ``name`` identifies the checkpoint, ``label`` the family it belongs to (seeds of one
    setting share a label; figures average over them).
    Seeds are fixed per (attack, batch), so the same inputs give the same adversarial images.
    Memory is bounded: the model sees at most ``min(batch_size, MAX_BATCH)`` images at a time,
    and only one batch of adversarial images is kept (shared by the scorings that reuse it).
    """
    if len(labels) == 0 or len(images) != len(labels):
        raise ValueError(f"evaluate needs as many labels as images (>= 1), got {len(images)} "
                         f"images and {len(labels)} labels")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch_size = min(batch_size, MAX_BATCH)
    model.eval()
    device = next(model.parameters()).device
    steps = model.iterations if iterations is None else check_iterations(iterations)
    original = model.iterations
    model.iterations = steps
    if steps == 0:
        scorings = ("last",)
    rows = []
    try:
        total = len(specs) * len(scorings) * -(-len(labels) // batch_size)
        bar = tqdm(total=total, desc=f"evaluate {name}", disable=not progress)
        for spec in specs:
            # for a plain CNN, e2e is the first pass: the same attack, the same examples
            key = replace(spec, target="first") if steps == 0 else spec
            reuse = key.target == "first" or key.attack in ("clean", "transfer")
            correct, seconds = dict.fromkeys(scorings, 0), dict.fromkeys(scorings, 0.0)
            for b, start in enumerate(range(0, len(labels), batch_size)):
                x = images[start:start + batch_size].to(device)
                y = labels[start:start + batch_size].to(device)
                adv = None
                for scoring in scorings:
                    started = time.perf_counter()
                    if adv is None or not reuse:
                        generator = torch.Generator().manual_seed(
                            seed * 7919 + zlib.crc32(repr(key).encode()) + b)
                        adv = make_adversarial(key, model, x, y, scoring, generator, twin)
                    correct[scoring] += int((predict(model, adv, scoring) == y).sum())
                    seconds[scoring] += time.perf_counter() - started
                    bar.update(1)
            rows += [{"model": name, "label": label or name, "iterations": steps,
                      "trained_iterations": original, "scoring": scoring, **asdict(spec),
                      "accuracy": correct[scoring] / len(labels), "n": len(labels),
                      "seconds": seconds[scoring]} for scoring in scorings]
        bar.close()
    finally:
        model.iterations = original
    return pd.DataFrame(rows)


def paper_table(results: pd.DataFrame, eps: float) -> pd.DataFrame:
    """Table 2/3 shape: rows CNN, CNN-F (last), CNN-F (avg); columns Clean, PGD (first),
    PGD (e2e), SPSA (first), SPSA (e2e), Transfer, Min. Accuracy in %, mean over checkpoints
    (``± sd`` when several)."""
    columns = {"Clean": ("clean", None), "PGD (first)": ("pgd", "first"),
               "PGD (e2e)": ("pgd", "e2e"), "SPSA (first)": ("spsa", "first"),
               "SPSA (e2e)": ("spsa", "e2e"), "Transfer": ("transfer", None)}
    at_eps = results[(results["eps"] == eps) | (results["attack"] == "clean")]
    table = {}
    for (kind, scoring), group in at_eps.groupby([results["iterations"] > 0, "scoring"]):
        row_name = f"CNN-F ({scoring})" if kind else "CNN"
        row = {}
        for column, (attack, target) in columns.items():
            pick = group[group["attack"] == attack]
            if target is not None:
                pick = pick[pick["target"] == target]
            if attack == "pgd" and len(pick):
                pick = pick[pick["steps"] == pick["steps"].max()]
            if pick.empty and kind == 0 and attack != "clean":
                pick = group[group["attack"] == attack]  # a CNN's first pass is its e2e
            if not pick.empty:
                per_model = pick.groupby("model")["accuracy"].min() * 100
                row[column] = (per_model.mean(), per_model.std() if len(per_model) > 1 else None)
        attacked = [v[0] for k, v in row.items() if k != "Clean"]
        if attacked:
            row["Min"] = (min(attacked), None)
        table[row_name] = row
    order = [r for r in ("CNN", "CNN-F (last)", "CNN-F (avg)") if r in table]
    return pd.DataFrame({r: {c: _fmt(v) for c, v in table[r].items()} for r in order}).T.reindex(
        columns=[*columns, "Min"])


def markdown(table: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (index as the first column)."""
    header = ["", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.iterrows():
        cells = ["" if pd.isna(v) else str(v) for v in row]
        lines.append("| " + " | ".join([str(index), *cells]) + " |")
    return "\n".join(lines)


def _fmt(value: tuple[float, float | None]) -> str:
    mean, sd = value
    return f"{mean:.2f}" if sd is None or np.isnan(sd) else f"{mean:.2f} ± {sd:.2f}"


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def masking_report(results: pd.DataFrame, tolerance: float = 0.01) -> list[Check]:
    """Gradient-masking checks (Athalye et al. 2018) on evaluation results.

    1. PGD accuracy <= FGSM accuracy (same model, scoring, target, eps);
    2. more PGD steps never raise accuracy;
    3. accuracy goes to ~0 (<= 5%) at the largest eps tried (>= 0.3) under white-box attack;
    4. black-box accuracy (SPSA, Square, transfer) >= the lowest white-box accuracy.
    ``tolerance``: accuracy slack (sampling noise) before a check fails.
    Each check compares one series: one model (label, name, test iterations), one scoring.
    """
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
    white = results[results["attack"].isin(WHITE_BOX)]
    for key, group in white.groupby([*model_keys, "scoring"]):
        largest = group["eps"].max()
        if largest >= 0.3:
            acc = group[group["eps"] == largest]["accuracy"].min()
            checks.append(Check("large eps -> ~0", acc <= 0.05,
                                f"{_series_name(*key[:3])} {key[3]}: white-box accuracy "
                                f"{acc:.3f} at eps {largest}"))
    black = results[results["attack"].isin(BLACK_BOX)]
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
