"""Where CNN-F's robustness comes from: each model attacked at its plain pass (0 iterations, a
plain CNN's cost) and through all its iterations, paired image by image against its twin.

    python analyses/plain_pass.py run NAME ROLE CHECKPOINT ATTACK [--at T] [--out DIR]
    python analyses/plain_pass.py summary [--out DIR]

``run``: one attack (apgd-ce, apgd-dlr, square, or pgd: PGD-40; e2e, i.e. aimed at the logits
scored, the last after T test iterations) at eps 0.05 on the first N (1,000) test images, on
one model of a pair (ROLE ``cnnf`` or ``twin``: a plain CNN, or the ablation twin whose
iterations change nothing), at T test iterations (default 0, the plain pass). For a CNN-F
attacked at T = 0 the same adversarial images are also scored after 1..(trained T) iterations:
does iterating at test time undo a plain-pass attack? Writes
``DIR/NAME/<role>-t<T>-<attack>.csv`` (one row per scored iteration count, per-image
correctness packed as ``neurocnnf evaluate`` does; clean accuracy beside it), kept when it
exists, so a killed queue resumes.
``summary``: ``DIR/paired.csv``: each CNN-F row minus its pair's twin under the same attack
(Newcombe's interval, exact McNemar p), and the per-image worst case over the attacks both
models have (correct clean and under every one of them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neurocnnf.attacks import AttackSpec
from neurocnnf.attacks.evaluate import make_adversarial, predict
from neurocnnf.attacks.paired import pack, paired_difference, unpack
from neurocnnf.pipelines.robustness import test_images
from neurocnnf.pretrained import resolve
from neurocnnf.train import load_model

EPS = 0.05
ATTACKS = ("apgd-ce", "apgd-dlr", "square", "pgd")  # pgd: PGD-40, the cheap check at n = 200
WORST = "worst-case"


def checkpoint(spec: str) -> Path:
    """A checkpoint path, or ``pretrained:NAME`` -> the shipped file."""
    return resolve(spec) or Path(spec)


def write_atomic(frame: pd.DataFrame, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(target.with_suffix(".tmp"), index=False)
    target.with_suffix(".tmp").replace(target)


def run(name: str, role: str, path: Path, attack: str, iterations: int, out: Path, n: int,
        batch_size: int = 250) -> Path:
    """``out/NAME/<role>-t<iterations>-<attack>.csv`` for one model and attack (see module)."""
    target = out / name / f"{role}-t{iterations}-{attack}.csv"
    if target.exists():
        return target
    model = load_model(path).eval()
    images, labels = test_images("fashion_mnist", n)
    spec = AttackSpec(attack, EPS, "e2e", 40 if attack == "pgd" else 0)
    scored = range(model.iterations + 1) if role == "cnnf" and iterations == 0 else [iterations]
    clean = predict(model, images, "last", iterations) == labels
    correct: dict[int, list[torch.Tensor]] = {t: [] for t in scored}
    for b, start in enumerate(range(0, n, batch_size)):
        x, y = images[start:start + batch_size], labels[start:start + batch_size]
        generator = torch.Generator().manual_seed(1000 * b + ATTACKS.index(attack))
        adversarial = make_adversarial(spec, model, x, y, "last", generator,
                                       iterations=iterations)
        for t in scored:
            correct[t].append(predict(model, adversarial, "last", t) == y)
    rows = [{"pair": name, "role": role, "checkpoint": str(path), "attack": attack, "eps": EPS,
             "attacked_at": iterations, "iterations": t,
             "trained_iterations": model.iterations, "n": n,
             "clean": float(clean.float().mean()),
             "accuracy": float(torch.cat(hits).float().mean()), "correct": pack(torch.cat(hits)),
             "clean_correct": pack(clean)}
            for t, hits in correct.items()]
    write_atomic(pd.DataFrame(rows), target)
    return target


def with_worst_case(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` plus, per pair, role and iterations (attacked there), a worst-case row:
    correct clean and under every attack that both models of the pair have."""
    attacked = results[results["attacked_at"] == results["iterations"]]
    rows = []
    for _, group in attacked.groupby("pair"):
        common = set.intersection(*(set(g["attack"]) for _, g in group.groupby("role")))
        if len(common) < 2:
            continue
        for _, g in group[group["attack"].isin(common)].groupby(["role", "iterations"]):
            if set(g["attack"]) != common:
                continue
            right = unpack(g["clean_correct"].iloc[0]).copy()
            for bits in g["correct"]:
                right &= unpack(bits)
            rows.append({**g.iloc[0].to_dict(), "attack": WORST,
                         "accuracy": float(right.mean()), "correct": pack(right),
                         "over": ", ".join(sorted(common))})
    return pd.concat([results, pd.DataFrame(rows)], ignore_index=True)


def summary(out: Path) -> pd.DataFrame:
    """Every CNN-F row minus its pair's twin under the same attack, as ``out/paired.csv``."""
    results = with_worst_case(pd.concat([pd.read_csv(p) for p in sorted(out.glob("*/*-t*-*.csv"))],
                                        ignore_index=True))
    rows = []
    for (pair, attack), group in results.groupby(["pair", "attack"]):
        twins = group[group["role"] == "twin"]
        if twins.empty:
            continue
        twin = twins.iloc[0]
        for cnnf in group[group["role"] == "cnnf"].itertuples():
            d = paired_difference(unpack(cnnf.correct), unpack(twin["correct"]))
            rows.append({"pair": pair, "attack": attack, "attacked_at": cnnf.attacked_at,
                         "iterations": cnnf.iterations,
                         "trained_iterations": cnnf.trained_iterations, "eps": cnnf.eps,
                         "n": d.n, "cnnf": cnnf.accuracy, "twin": twin["accuracy"],
                         "cnnf_clean": cnnf.clean, "twin_clean": twin["clean"],
                         "difference": d.difference, "low": d.low, "high": d.high,
                         "only_cnnf": d.only_a, "only_twin": d.only_b, "p": d.p,
                         "over": getattr(cnnf, "over", np.nan)})
    table = pd.DataFrame(rows)
    write_atomic(table, out / "paired.csv")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["run", "summary"])
    parser.add_argument("args", nargs="*", help="run: NAME ROLE CHECKPOINT ATTACK")
    parser.add_argument("--out", type=Path, default=Path("docs/reproduction/plain-pass"))
    parser.add_argument("--at", type=int, default=0, help="run: the test iterations attacked")
    parser.add_argument("--n", type=int, default=1000, help="first N test images")
    parser.add_argument("--threads", type=int,
                        help="torch threads (default: torch's own, OMP_NUM_THREADS)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.step == "run":
        if len(args.args) != 4 or args.args[1] not in ("cnnf", "twin") \
                or args.args[3] not in ATTACKS:
            raise SystemExit(f"run needs NAME cnnf|twin CHECKPOINT ATTACK ({', '.join(ATTACKS)})")
        name, role, path, attack = args.args
        print(run(name, role, checkpoint(path), attack, args.at, args.out, args.n), flush=True)
    else:
        table = summary(args.out)
        print(table.drop(columns=["only_cnnf", "only_twin"]).to_string(index=False))


if __name__ == "__main__":
    main()
