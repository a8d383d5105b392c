"""The CIFAR-10 zoo (issue 30): train, evaluate and ship the natural-image twin, CNN-F and PC.

    python analyses/cifar10_zoo.py train --seed 0 [--epochs N] [--runs DIR]
    python analyses/cifar10_zoo.py robustness --seed 0 [--runs DIR] [--n 1000] [--out DIR]
    python analyses/cifar10_zoo.py corruptions --seed 0 [--runs DIR] [--n 1000] [--out DIR]
    python analyses/cifar10_zoo.py register --seed 0 [--runs DIR] --hardware TEXT
    python analyses/cifar10_zoo.py snapshot|restore [--runs DIR] [--out DIR]
    python analyses/cifar10_zoo.py report [--out DIR]      # docs/cifar10.md from the files

``train``: the three runs of one seed (presets cifar10-cnn, cifar10 and cifar10-pc) under
``DIR/<cnn|cnnf1|pc>-s<seed>``, each resumed where it stopped (one after the other; start them
as separate processes to train them side by side). ``--epochs N`` (every command): the same
runs on an N-epoch schedule instead of the presets', ``<run>-e<N>-s<seed>``; their files are
tagged ``e<N>-s<seed>`` where the presets' are tagged ``s<seed>``, and they ship as
``cifar10-<run>-e<N>``.
``robustness``: APGD-CE and PGD-40 at eps 2/255, 4/255, 8/255 (pixel scale) on the first N test
images, aimed at the first pass, at all iterations (e2e) and at the plain pass alone
(iterations = 0, scored at 0 and at the model's T); the twin once (its three coincide); finished
runs only. One CSV per model x attack x eps x aim (rows per scored T with per-image
correctness), kept when it exists, so a killed run resumes at the next one; the largest eps
first. ``<run>-s<seed>.csv``: every evaluated row of a model; ``paired-s<seed>.csv``: CNN-F and
PC minus the twin image by image (Newcombe interval, exact McNemar p).
``corruptions``: CIFAR-10-C's four corruptions x 5 severities, test iterations 0..5.
``snapshot`` copies every run's config, metrics and resume state to ``OUT/runs/<run>/`` (the
record of the training, and what a later session resumes from; a run with no epoch finished is
left out); ``restore`` copies them back
into ``--runs`` where a run folder is missing. ``report`` renders docs/cifar10.md from those
records, the benchmark's JSON and the evaluation CSVs: no number in it is typed by hand.
``register``: ships the runs (a run still training: its best checkpoint so far, said in its
card and description) as ``cifar10-cnn``, ``cifar10-cnnf1``, ``cifar10-pc``
with their cards (robustness from ``robustness``' CSV when it exists).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import torch

from neurocnnf.attacks import AttackSpec
from neurocnnf.attacks.evaluate import make_adversarial, predict
from neurocnnf.attacks.paired import pack, paired_difference, unpack
from neurocnnf.device import resolve_device
from neurocnnf.io import atomic_write
from neurocnnf.pipelines.robustness import test_images
from neurocnnf.train import load_config, load_model, train

RUNS = {"cnn": "cifar10-cnn", "cnnf1": "cifar10", "pc": "cifar10-pc"}
NAMES = {"cnn": "CNN (twin)", "cnnf1": "CNN-F-1", "pc": "PC-1"}
EPS = (2 / 255, 4 / 255, 8 / 255)
ATTACKS = {"apgd-ce": 0, "pgd": 40}  # attack -> steps (0: the attack's default)
TEST_ITERATIONS = (0, 1, 2, 3, 5)


def tag(args: argparse.Namespace) -> str:
    """``s<seed>`` on the presets' schedule, ``e<N>-s<seed>`` on an N-epoch one."""
    return (f"e{args.epochs}-" if args.epochs else "") + f"s{args.seed}"


def run_folder(args: argparse.Namespace, key: str) -> Path:
    return args.runs / f"{key}-{tag(args)}"


def finished_runs(args: argparse.Namespace) -> dict[str, Path]:
    """The runs of this seed and schedule that have finished training, by key."""
    runs = {key: run_folder(args, key) for key in NAMES}
    return {key: run for key, run in runs.items() if (run / "results.json").exists()}


def cmd_train(args: argparse.Namespace) -> None:
    for key, preset in RUNS.items():
        out = run_folder(args, key)
        if (out / "results.json").exists():
            continue
        overrides = [f"seed={args.seed}"] + ([f"optim.epochs={args.epochs}"] if args.epochs else [])
        train(load_config(preset, overrides), out, resume=(out / "resume.pt").exists())


def aims(n_iterations: int) -> tuple[str, ...]:
    """What an attack aims at: a plain CNN (T = 0) only end to end (its three coincide)."""
    return ("e2e",) if n_iterations == 0 else ("plain", "first", "e2e")


def clean_rows(name: str, model, images, labels) -> list[dict]:
    """Clean accuracy at 0 and at the model's T iterations, per image."""
    rows = []
    for t in sorted({0, model.iterations}):
        correct = (predict(model, images, iterations=t) == labels).cpu()
        rows.append(dict(model=name, attack="clean", eps=0.0, aim="none", scored_t=t,
                         accuracy=float(correct.float().mean()), correct=pack(correct)))
    return rows


def attack_rows(name: str, model, images, labels, attack: str, eps: float, aim: str,
                seed: int) -> list[dict]:
    """One attack x eps x aim: ``plain`` attacks the plain pass (0 iterations) and scores it at
    0 and at T; ``first`` and ``e2e`` aim at the first pass or at all T iterations, scored at T."""
    spec = AttackSpec(attack, eps, "first" if aim == "first" else "e2e", ATTACKS[attack])
    at = 0 if aim == "plain" else model.iterations
    adversarial = torch.cat([
        make_adversarial(spec, model, x, y, "last", torch.Generator().manual_seed(seed * 7919 + i),
                         iterations=at)
        for i, (x, y) in enumerate(zip(images.split(250), labels.split(250), strict=True))])
    scored = sorted({0, model.iterations}) if aim == "plain" else [model.iterations]
    rows = []
    for t in scored:
        correct = (predict(model, adversarial, iterations=t) == labels).cpu()
        rows.append(dict(model=name, attack=attack, eps=eps, aim=aim, scored_t=t,
                         accuracy=float(correct.float().mean()), correct=pack(correct)))
    return rows


def paired_table(results: pd.DataFrame) -> pd.DataFrame:
    """Each recurrent model's row minus the twin's under the same attack and eps (the twin's
    only aim is e2e, which for it is every aim), image by image; rows whose twin cell is not
    evaluated yet are left out."""
    twin = results[results["model"] == NAMES["cnn"]].set_index(["attack", "eps"])
    rows = []
    for row in results[results["model"] != NAMES["cnn"]].itertuples():
        if (row.attack, row.eps) not in twin.index:
            continue
        base = twin.loc[(row.attack, row.eps)]
        base = base.iloc[0] if isinstance(base, pd.DataFrame) else base
        diff = paired_difference(unpack(row.correct), unpack(base["correct"]))
        rows.append(dict(model=row.model, attack=row.attack, eps=row.eps, aim=row.aim,
                         scored_t=row.scored_t, accuracy=row.accuracy,
                         twin_accuracy=base["accuracy"], difference=diff.difference,
                         low=diff.low, high=diff.high, mcnemar_p=diff.p))
    return pd.DataFrame(rows)


def _write_csv(frame: pd.DataFrame, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda tmp: frame.to_csv(tmp, index=False))


def cmd_robustness(args: argparse.Namespace) -> None:
    """Finished runs only (an interim checkpoint would be replaced); one CSV per model x attack
    x eps x aim under ``OUT/robustness-<tag>/<run>/``, kept when it exists, smallest eps
    first (8/255 leaves models trained without attacks at about 0 %); then
    ``<run>-<tag>.csv`` (all cells so far) and ``paired-<tag>.csv``."""
    from tqdm import tqdm

    device = resolve_device(args.device)
    images, labels = (tensor.to(device) for tensor in test_images("cifar10", args.n))
    folder = args.out / f"robustness-{tag(args)}"
    models = {key: load_model(run, device).eval() for key, run in finished_runs(args).items()}
    todo = [(key, "clean", 0.0, "none") for key in models]
    todo += [(key, attack, eps, aim) for eps in sorted(EPS) for attack in ATTACKS
             for key, model in models.items() for aim in aims(model.iterations)]
    for key, attack, eps, aim in tqdm(todo, desc="robustness cells"):
        target = folder / key / f"{attack}-{round(255 * eps)}-{aim}.csv"
        if target.exists():
            continue
        model = models[key]
        rows = (clean_rows(NAMES[key], model, images, labels) if attack == "clean" else
                attack_rows(NAMES[key], model, images, labels, attack, eps, aim, args.seed))
        _write_csv(pd.DataFrame(rows), target)
    parts = []
    for key in NAMES:
        cells = sorted((folder / key).glob("*.csv"))
        if cells:
            frame = pd.concat([pd.read_csv(cell) for cell in cells])
            _write_csv(frame, args.out / f"{key}-{tag(args)}.csv")
            parts.append(frame)
    paired = paired_table(pd.concat(parts)) if parts else pd.DataFrame()
    if not paired.empty:
        _write_csv(paired, args.out / f"paired-{tag(args)}.csv")


def cmd_corruptions(args: argparse.Namespace) -> None:
    from neurocnnf.data import cifar10
    from neurocnnf.pipelines.corruptions import run_corruptions

    models = {NAMES[key]: load_model(run) for key, run in finished_runs(args).items()}
    data = cifar10("test").subset(torch.arange(args.n))
    run_corruptions(models, data, args.out / f"corruptions-{tag(args)}",
                    {name: model.iterations for name, model in models.items()},
                    iterations=TEST_ITERATIONS)


def cmd_register(args: argparse.Namespace) -> None:
    from neurocnnf import pretrained
    from neurocnnf.pretrained.cards import register

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    suffix = ((f"-e{args.epochs}" if args.epochs else "")
              + ("" if args.seed == 0 else f"-s{args.seed}"))
    schedule = f", {args.epochs} epochs" if args.epochs else ""
    for key, description in (
            ("cnn", f"plain VGG-6 twin of cifar10-cnnf1{suffix} (no feedback), CIFAR-10 JPEGs"),
            ("cnnf1", "VGG-6 CNN-F trained with 1 feedback iteration on CIFAR-10 JPEGs"),
            ("pc", f"predictive-coding comparator on cifar10-cnnf1{suffix}'s VGG-6 backbone")):
        run = run_folder(args, key)
        name = f"cifar10-{key}{suffix}"
        description += schedule
        if not (run / "best.safetensors").exists():
            print(f"{name}: {run} has no best.safetensors yet; "
                  + ("the shipped one stays" if name in pretrained.list() else "not registered"))
            continue
        if not (run / "results.json").exists():  # still training: its best checkpoint so far
            done = len((run / "metrics.jsonl").read_text().splitlines())
            planned = args.epochs or load_config(RUNS[key]).optim.epochs
            description += (f" (interim: the best of its first {done} of {planned} epochs; "
                            "the finished run replaces it)")
        robustness = args.out / f"{key}-{tag(args)}.csv"
        summary = None
        if robustness.exists():
            table = pd.read_csv(robustness)
            summary = {f"{r.attack}@{r.eps:.4f}/{r.aim}/t{r.scored_t}": r.accuracy
                       for r in table.itertuples()}
        print(register(run, name, description, args.hardware, commit, summary))


# best.safetensors too: a resumed run scores the test set with it at the end, and an earlier
# epoch's best is not in resume.pt
RUN_RECORD = ("config.yaml", "metrics.jsonl", "resume.pt", "results.json", "best.safetensors")


def cmd_snapshot(args: argparse.Namespace) -> None:
    for run in sorted(p for p in args.runs.iterdir() if (p / "config.yaml").exists()):
        if not (run / "resume.pt").exists():  # not one epoch trained yet: nothing to keep
            print(f"{run}: no epoch finished yet, not snapshotted")
            continue
        for name in RUN_RECORD:
            if (run / name).exists():
                target = args.out / "runs" / run.name / name
                atomic_write(target, lambda tmp, src=run / name: shutil.copyfile(src, tmp))
        print(f"{run} -> {args.out / 'runs' / run.name}")


def cmd_restore(args: argparse.Namespace) -> None:
    for record in sorted((args.out / "runs").glob("*")):
        run = args.runs / record.name
        if (run / "resume.pt").exists() or not (record / "resume.pt").exists():
            continue
        run.mkdir(parents=True, exist_ok=True)
        for name in RUN_RECORD:
            if (record / name).exists():
                shutil.copyfile(record / name, run / name)
        print(f"{record} -> {run}")


def cmd_report(args: argparse.Namespace) -> None:
    from render_cifar10 import render

    text = render(args.out)
    atomic_write(args.doc, lambda tmp: Path(tmp).write_text(text))
    print(f"wrote {args.doc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("train", "robustness", "corruptions", "register",
                                            "snapshot", "restore", "report"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="an N-epoch schedule instead of the presets' "
                             "(runs <run>-e<N>-s<seed>)")
    parser.add_argument("--runs", type=Path, default=Path("/work/runs/cifar10"))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("docs/reproduction/cifar10"))
    parser.add_argument("--hardware", default="2-core Xeon (CPU), 1 thread per run")
    parser.add_argument("--doc", type=Path, default=Path("docs/cifar10.md"))
    parser.add_argument("--device", default="cpu", help="robustness: cpu, cuda or auto")
    args = parser.parse_args()
    {"train": cmd_train, "robustness": cmd_robustness, "corruptions": cmd_corruptions,
     "register": cmd_register, "snapshot": cmd_snapshot, "restore": cmd_restore,
     "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    main()
