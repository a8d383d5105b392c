"""Table 2 under the paper's own attack settings, beside the stronger ones of
docs/reproduction.md: the reference's test.py attacks FMNIST at eps 0.2 on [-1, 1] inputs
(0.1 in pixel scale) with PGD-7 (step 0.071, i.e. 0.0355 in pixel scale) on the first pass and
end to end, SPSA-7 and the transfer of the twin's PGD-7 examples.

    python analyses/table2_paper_attacks.py [--out docs/reproduction/table2/paper-settings]

Writes ``pgd7.csv`` (clean, PGD-7 first/e2e, transfer; first 1,000 test images) and
``spsa7.csv`` (SPSA-7 first/e2e; first 100, as the SPSA-20 column), per-image correctness
packed as ``neurocnnf evaluate`` does; each file is kept when it exists (resumable).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from neurocnnf.attacks import AttackSpec
from neurocnnf.attacks.evaluate import evaluate
from neurocnnf.pipelines.robustness import test_images
from neurocnnf.pretrained import load

EPS, STEP, STEPS = 0.1, 0.0355, 7  # the reference's test.py, in pixel scale
MODELS = {"CNN-F": "fmnist-adv-cnnf1", "CNN": "fmnist-adv-cnn"}


def paper_specs(spsa: bool, transfer: bool) -> list[AttackSpec]:
    """The reference's attacks at eps 0.1: PGD-7 (or SPSA-7) on the first pass and e2e, and
    (PGD, ``transfer``) the transfer of the twin's PGD-7 examples."""
    if spsa:
        return [AttackSpec("clean"), AttackSpec("spsa", EPS, "first", STEPS),
                AttackSpec("spsa", EPS, "e2e", STEPS)]
    return [AttackSpec("clean"), *(AttackSpec("pgd", EPS, t, STEPS, step_size=STEP)
                                   for t in ("first", "e2e")),
            *([AttackSpec("transfer", EPS, "first", STEPS, step_size=STEP)] if transfer else [])]


def run(out: Path, spsa: bool, n: int) -> Path:
    target = out / ("spsa7.csv" if spsa else "pgd7.csv")
    if target.exists():
        return target
    images, labels = test_images("fashion_mnist", n)
    twin = load(MODELS["CNN"])
    frames = [evaluate(load(name), images, labels, paper_specs(spsa, label != "CNN"),
                       scorings=("last", "avg"),
                       twin=None if label == "CNN" else twin, name=name, label=label,
                       progress=False)
              for label, name in MODELS.items()]
    frame = pd.concat(frames, ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(target.with_suffix(".tmp"), index=False)
    target.with_suffix(".tmp").replace(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/reproduction/table2/paper-settings"))
    parser.add_argument("--spsa", action="store_true", help="SPSA-7 on the first 100 images")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(run(args.out, args.spsa, 100 if args.spsa else 1000))


if __name__ == "__main__":
    main()
