"""What training under bfloat16 autocast costs (issue 37): the CIFAR-10 twin and CNN-F-1 trained
both ways, same preset, seed and schedule, compared image by image.

    python analyses/bf16_cost.py train [--runs DIR]
    python analyses/bf16_cost.py evaluate [--runs DIR] [--out DIR] [--n 1000]
    python analyses/bf16_cost.py report [--out DIR] [--write]

``train``: ``cnn-bf16-s0`` and ``cnnf1-bf16-s0`` under ``DIR`` (presets cifar10-cnn and cifar10
with ``bf16=true``), resumed where they stopped; the float32 runs are the zoo's ``cnn-s0`` and
``cnnf1-s0``. ``evaluate`` (both runs of a model finished) writes, under ``OUT``:
``clean-<key>.csv`` (per-image correctness on the whole test set at the model's T, both ways),
``apgd-ce-2-e2e-<key>.csv`` (APGD-CE at eps 2/255 through all iterations on the first N test
images; the float32 cell is the zoo's own, ``robustness-s0``) and ``neural/`` (RSA of both
ways against the Algonauts-92 EVC and IT RDMs), then ``cost.json``. ``report`` prints the table
(``--write``: into benchmarks/README.md between its bf16 markers). Every cost is bf16 minus
float32; a preset uses bf16 only when no accuracy cost is below -PRESET_BAR pp.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch

from neurocnnf.attacks.evaluate import predict
from neurocnnf.attacks.paired import pack, paired_difference, unpack
from neurocnnf.io import atomic_write
from neurocnnf.pipelines.robustness import test_images
from neurocnnf.train import load_config, load_model, train

sys.path.insert(0, str(Path(__file__).parent))
from cifar10_zoo import RUNS, _write_csv, attack_rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"cnn": "CNN (twin)", "cnnf1": "CNN-F-1"}
PRESET_BAR = 0.3  # pp: the bar for a preset that trains in bf16
EPS = 2 / 255
MARK = "<!-- bf16 -->"
ZOO = ROOT / "docs" / "reproduction" / "cifar10"


def runs_of(runs: Path, key: str) -> dict[str, Path]:
    return {"float32": runs / f"{key}-s0", "bf16": runs / f"{key}-bf16-s0"}


def cmd_train(args: argparse.Namespace) -> None:
    for key in KEYS:
        out = runs_of(args.runs, key)["bf16"]
        if not (out / "results.json").exists():
            train(load_config(RUNS[key], ["bf16=true"]), out, resume=(out / "resume.pt").exists())


def _cell(target: Path, rows, *args) -> pd.DataFrame:
    """The CSV at ``target``, computed by ``rows(*args)`` and written first when it is
    missing."""
    if not target.exists():
        _write_csv(pd.DataFrame(rows(*args)), target)
    return pd.read_csv(target)


def _clean(models: dict, images: torch.Tensor, labels: torch.Tensor) -> list[dict]:
    return [dict(way=way, accuracy=float(c.float().mean()), correct=pack(c))
            for way, model in models.items()
            for c in [(predict(model, images, iterations=model.iterations) == labels).cpu()]]


def _difference(frame: pd.DataFrame) -> dict:
    by_way = frame.set_index("way")
    d = paired_difference(unpack(by_way.loc["bf16", "correct"]),
                          unpack(by_way.loc["float32", "correct"]))
    return dict(float32=float(by_way.loc["float32", "accuracy"]),
                bf16=float(by_way.loc["bf16", "accuracy"]), difference=100 * d.difference,
                low=100 * d.low, high=100 * d.high, mcnemar_p=d.p, n=d.n)


def _robust(key: str, model, images, labels, n: int) -> list[dict]:
    zoo = pd.read_csv(ZOO / "robustness-s0" / key / "apgd-ce-2-e2e.csv")
    (row,) = zoo.itertuples()
    ours = attack_rows(KEYS[key], model, images[:n], labels[:n], "apgd-ce", EPS, "e2e", 0)
    return [dict(way="float32", accuracy=row.accuracy, correct=row.correct),
            *[dict(way="bf16", accuracy=r["accuracy"], correct=r["correct"]) for r in ours]]


def _rsa(runs: Path, out: Path) -> dict:
    """Mean |bf16 - float32| Spearman similarity over every layer x iteration cell, and the
    best cell's similarity both ways, per model and region (Algonauts-92)."""
    from neurocnnf.pipelines.neural import run_neural

    table = out / "neural" / "algonauts92" / "similarity.csv"
    if not table.exists():
        models = {f"{KEYS[key]} {way}": str(path) for key in KEYS
                  for way, path in runs_of(runs, key).items()}
        run_neural(models, ["algonauts92"], out / "neural", n_boot=100)
    frame = pd.read_csv(table)
    result = {}
    for key, name in KEYS.items():
        for region, cells in frame.groupby("region"):
            ways = {way: cells[cells["model"] == f"{name} {way}"].set_index(
                ["layer", "kind", "iteration"])["similarity"] for way in ("float32", "bf16")}
            gap = (ways["bf16"] - ways["float32"]).dropna()
            result[f"{key}/{region}"] = dict(
                mean_abs_difference=float(gap.abs().mean()), cells=len(gap),
                best_float32=float(ways["float32"].max()), best_bf16=float(ways["bf16"].max()))
    return result


def cmd_evaluate(args: argparse.Namespace) -> None:
    images, labels = test_images("cifar10", None)
    cost: dict = {"clean": {}, "apgd-ce 2/255 e2e": {}}
    for key in KEYS:
        paths = runs_of(args.runs, key)
        missing = [str(p) for p in paths.values() if not (p / "results.json").exists()]
        if missing:
            raise SystemExit(f"not finished yet: {', '.join(missing)}")
        models = {way: load_model(path).eval() for way, path in paths.items()}
        clean = _cell(args.out / f"clean-{key}.csv", _clean, models, images, labels)
        robust = _cell(args.out / f"apgd-ce-2-e2e-{key}.csv", _robust, key, models["bf16"],
                       images, labels, args.n)
        cost["clean"][key] = _difference(clean)
        cost["apgd-ce 2/255 e2e"][key] = _difference(robust)
    cost["rsa"] = _rsa(args.runs, args.out)
    text = json.dumps(cost, indent=1)
    atomic_write(args.out / "cost.json", lambda tmp: Path(tmp).write_text(text))
    print(text)


def render(cost: dict) -> str:
    rows = [f"| {KEYS[key]} | {what} | {100 * c['float32']:.2f} | {100 * c['bf16']:.2f} | "
            f"{c['difference']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}] | {c['n']} |"
            for what in ("clean", "apgd-ce 2/255 e2e") for key, c in cost[what].items()]
    rsa = [f"| {KEYS[key]} | {region} | {c['best_float32']:.3f} | {c['best_bf16']:.3f} | "
           f"{c['mean_abs_difference']:.3f} ({c['cells']} cells) |"
           for name, c in cost["rsa"].items() for key, region in [name.split("/")]]
    cells = [c for what in ("clean", "apgd-ce 2/255 e2e") for c in cost[what].values()]
    worst = min(cells, key=lambda c: c["difference"])
    verdict = (f"The largest accuracy cost is {worst['difference']:+.2f} pp: "
               + (f"within the {PRESET_BAR} pp bar, so the `cifar10-bf16` preset trains in bf16."
                  if worst["difference"] >= -PRESET_BAR else
                  f"beyond the {PRESET_BAR} pp bar, so no preset trains in bf16.")
               + (" Its 95 % interval includes zero: one seed trained each way cannot tell it "
                  "from the spread of retraining, and the bar is applied to the estimate."
                  if worst["low"] < 0 < worst["high"] else ""))
    return ("Trained both ways (CIFAR-10, 15 epochs, seed 0; bf16 minus float32, image by image, "
            "Newcombe 95 % interval; `analyses/bf16_cost.py report --write`).\n\n"
            "| model | accuracy on | float32 % | bf16 % | difference pp [95 %] | images |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            "RSA against the Algonauts-92 RDMs (Spearman; best layer x iteration cell, and the "
            "mean absolute difference over all cells):\n\n"
            "| model | region | best, float32 | best, bf16 | mean abs difference |\n"
            "|---|---|---|---|---|\n" + "\n".join(rsa) + f"\n\n{verdict}")


def cmd_report(args: argparse.Namespace) -> None:
    text = render(json.loads((args.out / "cost.json").read_text()))
    print(text)
    if args.write:
        readme = ROOT / "benchmarks" / "README.md"
        before, _, rest = readme.read_text().partition(MARK)
        _, _, after = rest.partition(MARK)
        atomic_write(readme, lambda tmp: Path(tmp).write_text(
            f"{before}{MARK}\n{text}\n{MARK}{after}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("train", "evaluate", "report"))
    parser.add_argument("--runs", type=Path, default=Path("/work/runs/cifar10"))
    parser.add_argument("--out", type=Path, default=ZOO / "bf16")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    {"train": cmd_train, "evaluate": cmd_evaluate, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    main()
