"""The robustness evaluation loop: adversarial images per batch, accuracy per attack and
scoring, and the per-image worst case over the attacks at each eps.

Every attack is described by an :class:`AttackSpec` naming a registered attack (see
``neurocnnf.attacks.registry``). For a CNN-F, "first" attacks the plain first pass; "e2e"
differentiates through all iterations and aims at the scored logits ("last" or "avg"). The
adversarial images are then scored with that same scoring. eps is in pixel scale.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from tqdm.auto import tqdm

from neurocnnf.attacks.paired import CORRECT, pack
from neurocnnf.attacks.registry import get_attack
from neurocnnf.attacks.types import AttackCall, AttackSpec
from neurocnnf.extras import require
from neurocnnf.models.protocol import FeedbackModel, resolve_iterations

if TYPE_CHECKING:
    import pandas as pd

WORST_CASE = "worst-case"  # the rows of the per-image worst case over every attack at an eps
MAX_BATCH = 256  # images per model call in evaluation, whatever batch_size the caller asks


def make_adversarial(spec: AttackSpec, model: FeedbackModel, x: Tensor, y: Tensor,
                     scoring: str, generator: torch.Generator,
                     twin: FeedbackModel | None = None, iterations: int | None = None) -> Tensor:
    """Adversarial images (N, C, H, W) for one batch under ``spec`` (clean or eps 0: ``x``).

    ``iterations``: T of the scored model (None: the model's own)."""
    if spec.attack == "clean" or spec.eps == 0:
        return x
    attack = get_attack(spec.attack)
    iterations = resolve_iterations(model, iterations)
    call = AttackCall(spec, model, x, y, scoring, iterations, generator, twin, steps_run(spec))
    if not attack.restartable:
        return attack.function(call)
    return _worst_of_restarts(lambda: attack.function(call), model, x, y, scoring, iterations,
                              spec.restarts)


def _worst_of_restarts(run: Callable[[], Tensor], model: FeedbackModel, x: Tensor, y: Tensor,
                       scoring: str, iterations: int, restarts: int) -> Tensor:
    """Keep, per sample, the first restart that fools the scored model."""
    best = run()
    for _ in range(restarts - 1):
        correct = predict(model, best, scoring, iterations) == y
        if not bool(correct.any()):
            break
        candidate = run()
        best = torch.where(correct.view(-1, *([1] * (x.dim() - 1))), candidate, best)
    return best


@torch.no_grad()
def predict(model: FeedbackModel, x: Tensor, scoring: str = "last",
            iterations: int | None = None) -> Tensor:
    """Predicted labels (N,) under a scoring ('first', 'last' or 'avg').

    The model runs on at most ``MAX_BATCH`` images at a time and keeps no layer activations,
    so memory is bounded whatever N is; only the (N,) labels are kept.
    """
    return torch.cat([model(chunk, iterations=iterations).scored(scoring).argmax(1)
                      for chunk in x.split(MAX_BATCH)])


def evaluate(
    model: FeedbackModel,
    images: Tensor,
    labels: Tensor,
    specs: list[AttackSpec],
    scorings: tuple[str, ...] = ("last", "avg"),
    twin: FeedbackModel | None = None,
    batch_size: int = 256,
    seed: int = 0,
    name: str = "model",
    label: str | None = None,
    iterations: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Accuracy of ``model`` under each attack and scoring; one tidy row per combination.

    images: float (N, C, H, W) in [0, 1]; labels (N,). A model with 0 iterations (a plain
    CNN) is scored once ('last'). ``iterations``: T for this evaluation (None: the model's
    own); it is passed to every model call, the model is left unchanged.
    ``name`` identifies the checkpoint, ``label`` the family it belongs to (seeds of one
    setting share a label; figures average over them).
    At every eps with two or more attack specs, a ``worst-case`` row per scoring counts an
    image correct only if it is correct clean (when 'clean' is among the specs) and under every
    one of those attacks (AutoAttack's robust accuracy; target 'all').
    Each row keeps its per-image correctness in the ``correct`` column, packed as text
    (``neurocnnf.attacks.paired.unpack`` reads it), for paired comparisons between models.
    Seeds are fixed per (attack, batch), so the same inputs give the same adversarial images.
    Memory is bounded: the model sees at most ``min(batch_size, MAX_BATCH)`` images at a time,
    and only one batch of adversarial images is kept (shared by the scorings that reuse it).
    """
    pd = require("pandas", "analysis", "the robustness evaluation's results table")
    if len(labels) == 0 or len(images) != len(labels):
        raise ValueError(f"evaluate needs as many labels as images (>= 1), got {len(images)} "
                         f"images and {len(labels)} labels")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch_size = min(batch_size, MAX_BATCH)
    model.eval()
    device = next(model.parameters()).device
    iterations = resolve_iterations(model, iterations)
    if iterations == 0:
        scorings = ("last",)
    batches = -(-len(labels) // batch_size)
    bar = tqdm(total=len(specs) * len(scorings) * batches, desc=f"evaluate {name}",
               disable=not progress)
    base = {"model": name, "label": label or name, "iterations": iterations,
            "trained_iterations": model.iterations}
    rows, correct = [], {}  # correct[(spec index, scoring)]: (N,) bool per image
    ran = {}  # attack setting -> index of the spec that ran it
    for index, spec in enumerate(specs):
        # for a plain CNN, e2e is the first pass: the same attack, the same examples
        key = replace(spec, target="first") if iterations == 0 else spec
        if key in ran:  # run once, reported under each spec that asks for it
            for scoring in scorings:
                correct[index, scoring] = correct[ran[key], scoring]
            bar.update(batches * len(scorings))
            rows += [_row(base, spec, scoring, correct[index, scoring], 0.0)
                     for scoring in scorings]
            continue
        ran[key] = index
        seconds = dict.fromkeys(scorings, 0.0)
        reuse = key.target == "first" or key.attack == "clean" or \
            get_attack(key.attack).needs_twin
        hits = {s: [] for s in scorings}
        for b, start in enumerate(range(0, len(labels), batch_size)):
            x = images[start:start + batch_size].to(device)
            y = labels[start:start + batch_size].to(device)
            adv = None
            for scoring in scorings:
                started = time.perf_counter()
                if adv is None or not reuse:
                    generator = torch.Generator().manual_seed(
                        seed * 7919 + zlib.crc32(repr(key).encode()) + b)
                    adv = make_adversarial(key, model, x, y, scoring, generator, twin,
                                           iterations)
                hits[scoring].append((predict(model, adv, scoring, iterations) == y).cpu())
                seconds[scoring] += time.perf_counter() - started
                bar.update(1)
        for scoring in scorings:
            correct[index, scoring] = torch.cat(hits[scoring])
            rows.append(_row(base, spec, scoring, correct[index, scoring], seconds[scoring]))
    bar.close()
    for scoring in scorings:
        for eps, robust in worst_case(specs, [correct[i, scoring] for i in range(len(specs))]):
            rows.append({**base, "scoring": scoring, "attack": WORST_CASE, "eps": eps,
                         "target": "all", "steps": 0, "restarts": 1, "step_size": None,
                         "accuracy": int(robust.sum()) / len(labels), "n": len(labels),
                         "seconds": 0.0, CORRECT: pack(robust)})
    return pd.DataFrame(rows)


def _row(base: dict, spec: AttackSpec, scoring: str, correct: Tensor, seconds: float) -> dict:
    """One results row: the spec's fields, its accuracy from ``correct`` ((N,) bool), and
    ``correct`` itself, packed (``paired.pack``)."""
    return {**base, "scoring": scoring, **asdict(spec), "steps": steps_run(spec),
            "accuracy": int(correct.sum()) / len(correct), "n": len(correct),
            "seconds": seconds, CORRECT: pack(correct)}


def steps_run(spec: AttackSpec) -> int:
    """The steps an attack spec runs: its own, or its attack's default where it gives 0
    (e.g. APGD-CE's 100); 0 for 'clean'."""
    if spec.steps or spec.attack == "clean":
        return spec.steps
    return get_attack(spec.attack).default_steps


def worst_case(specs: list[AttackSpec], correct: list[Tensor]) -> list[tuple[float, Tensor]]:
    """Per eps with two or more attack specs: (eps, (N,) bool), true where an image is correct
    under every attack at that eps (and clean, when a 'clean' spec is given).

    correct: one (N,) bool tensor per spec, in the order of ``specs``."""
    clean = [c for s, c in zip(specs, correct, strict=True) if s.attack == "clean"]
    out = []
    for eps in sorted({s.eps for s in specs if s.attack != "clean" and s.eps > 0}):
        attacked = [c for s, c in zip(specs, correct, strict=True)
                    if s.attack != "clean" and s.eps == eps]
        if len(attacked) >= 2:
            out.append((eps, torch.stack(clean[:1] + attacked).all(0)))
    return out
