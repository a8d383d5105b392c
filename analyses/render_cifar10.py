"""docs/cifar10.md from the CIFAR-10 zoo's records (``analyses/cifar10_zoo.py report``).

Reads, under ``docs/reproduction/cifar10/``: ``runs/<run>/{config.yaml,metrics.jsonl,
results.json}`` (``snapshot``), ``bench-steps.json`` (``benchmarks/bench_natural.py steps
--json``), and the evaluation CSVs when they exist (``paired-s<seed>.csv``,
``corruptions-s<seed>/corruptions.csv``). Every number in the page comes from these files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import yaml

from neurocnnf.models import build_model

ROLES = {"cnn": "CNN (twin)", "cnnf1": "CNN-F-1", "pc": "PC-1"}
BUDGET_HOURS = 6  # the limit for the twin's training on this 2-core machine
TARGET_ACCURACY = 85  # %, the bar for the twin's test accuracy
MAX_GAP = 1.5  # pp, how far CNN-F may fall below the twin


def _runs(out: Path) -> list[tuple[str, dict, list[dict], dict | None]]:
    rows = []
    for folder in sorted((out / "runs").glob("*-s*")):
        config = yaml.safe_load((folder / "config.yaml").read_text())
        metrics = [json.loads(line) for line in
                   (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
        results = json.loads((folder / "results.json").read_text()) \
            if (folder / "results.json").exists() else None
        rows.append((folder.name, config, metrics, results))
    return rows


def _training_table(runs, n_train: int) -> list[str]:
    lines = ["| run | epochs done | best validation accuracy (epoch) | images/s (median) | "
             "time per epoch | test accuracy |", "|---|---|---|---|---|---|"]
    for name, config, metrics, results in runs:
        planned = config["optim"]["epochs"]
        if not metrics:
            lines.append(f"| {name} | 0 of {planned} | - | - | - | - |")
            continue
        best = max(metrics, key=lambda m: m["val_acc_last"])
        rate = pd.Series([m["images_per_s"] for m in metrics]).median()
        test = f"{100 * results['test']['acc_last']:.1f} %" if results else "(training)"
        lines.append(f"| {name} | {len(metrics)} of {planned} | "
                     f"{100 * best['val_acc_last']:.1f} % ({best['epoch']}) | {rate:.0f} | "
                     f"{n_train / rate / 60:.0f} min | {test} |")
    return lines


def _gap(gap: float) -> str:
    """``gap`` (pp, twin minus CNN-F) as words: '1.0 pp below' or '0.2 pp above'."""
    return f"{abs(gap):.1f} pp {'below' if gap >= 0 else 'above'}"


def _partner(runs, name: str):
    """The other run of a longer schedule's pair: ``cnnf1-e<N>-s<seed>`` for
    ``cnn-e<N>-s<seed>`` and the reverse; None when it has no record."""
    twin, cnnf = "cnn-e", "cnnf1-e"
    other = (name.replace(twin, cnnf, 1) if name.startswith(twin)
             else name.replace(cnnf, twin, 1))
    return next((run for run in runs if run[0] == other), None)


def _longer(runs, quiet_rates: dict[str, float], n_train: int) -> str:
    """What a longer schedule (``<cnn|cnnf1>-e<epochs>-s<seed>``) has reached: a run still
    training, or a finished twin against the bar with its hours of the whole machine (its epochs
    at the benchmark's quiet twin rate; the runs' own epochs shared the cores) and the CNN-F
    of the same schedule."""
    lines = []
    for name, config, metrics, results in runs:
        if not name.startswith(("cnn-e", "cnnf1-e")) or not metrics:
            continue
        epochs = config["optim"]["epochs"]
        if results is None:
            best = max(metrics, key=lambda m: m["val_acc_last"])
            lines.append(f" A {epochs}-epoch run ({name}) is training: {len(metrics)} epochs "
                         f"done, best validation accuracy so far "
                         f"{100 * best['val_acc_last']:.1f} % (epoch {best['epoch']}).")
            continue
        accuracy = 100 * results["test"]["acc_last"]
        if name.startswith("cnnf1-e"):
            twin = _partner(runs, name)
            if twin is not None and twin[3] is not None:
                gap = 100 * twin[3]["test"]["acc_last"] - accuracy
                lines.append(f" CNN-F on the same {epochs} epochs ({name}) reached "
                             f"{accuracy:.1f} %: {_gap(gap)} its twin, "
                             f"{'within' if gap <= MAX_GAP else 'outside'} the {MAX_GAP} pp "
                             "allowed.")
            continue
        hours = ""
        rate = quiet_rates.get("twin (vgg6, T=0)")
        if rate:
            hours = (f" ({epochs * n_train / rate / 3600:.1f} h of the whole machine at the "
                     f"benchmark's quiet {rate:.0f} images/s; the bar allows {BUDGET_HOURS} h)")
        met = accuracy >= TARGET_ACCURACY
        lines.append(f" The {epochs}-epoch twin ({name}) reached {accuracy:.2f} % test "
                     f"accuracy{hours}: "
                     + ("the bar's accuracy is met." if met else
                        f"{TARGET_ACCURACY - accuracy:.2f} pp short of the bar."))
        if met and _partner(runs, name) is None:
            lines.append(f" CNN-F on the same {epochs} epochs has not started yet.")
    return "".join(lines)


def _met(runs) -> str:
    """The lead sentence for a longer schedule (``cnn-e<N>-s<seed>`` with its
    ``cnnf1-e<N>-s<seed>``) that meets the whole bar: the twin at the bar's accuracy and CNN-F
    within the gap; '' while none does."""
    for name, config, _, results in runs:
        cnnf = _partner(runs, name)
        if not name.startswith("cnn-e") or results is None or cnnf is None or cnnf[3] is None:
            continue
        twin, ours = (100 * r["test"]["acc_last"] for r in (results, cnnf[3]))
        if twin >= TARGET_ACCURACY and twin - ours <= MAX_GAP:
            return (f"**The bar is met on the {config['optim']['epochs']}-epoch schedule:** the "
                    f"twin ({name}) reached {twin:.2f} % and CNN-F ({cnnf[0]}) {ours:.2f} %, "
                    f"{_gap(twin - ours)} it. ")
    return ""


def _verdict(runs, quiet_rates: dict[str, float], n_train: int) -> str:
    """Whether the finished twin reached the bar, from its results.json; a longer schedule
    that meets it leads."""
    twin = next((r for r in runs if r[0].startswith("cnn-s") and r[3]), None)
    if twin is None:
        return "The twin has not finished yet."
    accuracy = 100 * twin[3]["test"]["acc_last"]
    epochs = len(twin[2])
    cnnf = next((r for r in runs if r[0].startswith("cnnf1-s") and r[3]), None)
    gap = ""
    if cnnf is not None:
        last, first = (100 * cnnf[3]["test"][key] for key in ("acc_last", "acc_first"))
        gap = (f" CNN-F ({cnnf[0]}) reached {last:.1f} % (scored after its iterations; "
               f"{first:.1f} % on its first pass): {accuracy - last:.1f} pp below the twin, "
               f"{'within' if accuracy - last <= MAX_GAP else 'outside'} the {MAX_GAP} pp "
               "allowed.")
    if accuracy >= TARGET_ACCURACY:
        return f"The twin reached {accuracy:.1f} % after {epochs} epochs: the bar is met." + gap
    met = _met(runs)
    later = ("" if met else "; the same twin on longer schedules follows (`analyses/gpu_zoo.sh` "
             "trains the three runs for 60 epochs on a GPU, in resumable calls)")
    return (f"{met}The {epochs}-epoch twin ({twin[0]}) reached {accuracy:.1f} %: "
            f"{TARGET_ACCURACY - accuracy:.1f} pp short of the bar.{gap} The schedule was cut "
            f"to fit CNN-F's and PC's runs into the CPU time the sessions had{later}."
            + _longer(runs, quiet_rates, n_train))


def _quiet_rates(out: Path) -> dict[str, float]:
    """images/s per model from ``bench-steps.json`` (empty before the benchmark ran)."""
    path = out / "bench-steps.json"
    if not path.exists():
        return {}
    return {name: values["images_per_s"]
            for name, values in json.loads(path.read_text())["models"].items()}


def _bench(out: Path, schedules: list[int]) -> list[str]:
    path = out / "bench-steps.json"
    if not path.exists():
        return ["(`benchmarks/bench_natural.py steps --json "
                "docs/reproduction/cifar10/bench-steps.json` has not been run yet.)"]
    bench = json.loads(path.read_text())
    lines = [f"Measured with `benchmarks/bench_natural.py steps` ({bench['threads']} threads, "
             f"batch {bench['batch']}, {bench['repeats']} alternating repeats, 1-minute load "
             f"{bench['load_1min']}):", "",
             "| model | images/s | step time over the twin's | one epoch (45,000 images) |",
             "|---|---|---|---|"]
    for name, values in bench["models"].items():
        lines.append(f"| {name} | {values['images_per_s']:.0f} | "
                     f"{values['step_over_twin']:.2f} | "
                     f"{45_000 / values['images_per_s'] / 60:.0f} min |")
    twin = bench["models"]["twin (vgg6, T=0)"]["images_per_s"]
    hours = ", ".join(f"{epochs * 45_000 / twin / 3600:.1f} h for {epochs} epochs"
                      for epochs in schedules)
    lines += ["", f"At that rate the twin takes {hours} (budget: {BUDGET_HOURS} h)."]
    return lines


def _by_schedule(paths: list[Path], preset_epochs: int) -> dict[int, list[Path]]:
    """Evaluation files grouped by the epochs of their runs' schedule, longest first: a name
    tagged ``e<N>-s<seed>`` is an N-epoch run's, ``s<seed>`` the presets'."""
    groups: dict[int, list[Path]] = {}
    for path in paths:
        found = re.search(r"-e(\d+)-s\d+$", path.name.removesuffix(".csv"))
        groups.setdefault(int(found.group(1)) if found else preset_epochs, []).append(path)
    return dict(sorted(groups.items(), reverse=True))


def _robustness(out: Path, preset_epochs: int) -> list[str]:
    tables = [p for p in sorted(out.glob("paired-*s*.csv")) if p.stat().st_size > 1]
    if not tables:
        return ["Not run yet: `python analyses/cifar10_zoo.py robustness` once the runs finish."]
    lines = []
    for epochs, paths in _by_schedule(tables, preset_epochs).items():
        tags = [path.stem.removeprefix("paired-") for path in paths]
        lines += [f"### {epochs}-epoch runs ({', '.join(tags)}; the first "
                  f"{_n_images(out / f'cnn-{tags[0]}.csv'):,} test images)", "",
                  *_robustness_table(pd.concat(pd.read_csv(path) for path in paths)), ""]
    return lines[:-1]


def _n_images(results: Path) -> int:
    """How many images a model's evaluation CSV scored (its packed per-image bits say)."""
    return int(pd.read_csv(results, nrows=1)["correct"].iloc[0].split(":")[0])


def _robustness_table(paired: pd.DataFrame) -> list[str]:
    lines = ["| model | attack | eps (x 255) | aimed at | scored after T | accuracy | twin | "
             "difference [95 % interval] | McNemar p |", "|---|---|---|---|---|---|---|---|---|"]
    for r in paired.itertuples():
        lines.append(f"| {r.model} | {r.attack} | {255 * r.eps:.0f} | {r.aim} | {r.scored_t} | "
                     f"{100 * r.accuracy:.1f} % | {100 * r.twin_accuracy:.1f} % | "
                     f"{100 * r.difference:+.1f} [{100 * r.low:+.1f}, {100 * r.high:+.1f}] | "
                     f"{r.mcnemar_p:.2g} |")
    key = ["model", "attack", "eps", "scored_t"]
    first, plain = (paired[paired["aim"] == aim].set_index(key)[["accuracy", "mcnemar_p"]]
                    for aim in ("first", "plain"))
    both = first.merge(plain, left_index=True, right_index=True, suffixes=("", "_plain"))
    if len(both) and (both["accuracy"] == both["accuracy_plain"]).all() \
            and (both["mcnemar_p"] == both["mcnemar_p_plain"]).all():
        lines += ["", f"Aimed at the first pass and aimed at the plain pass give the same rows "
                  f"when both are scored after T (all {len(both)} pairs here): a model's first "
                  "pass is its plain feedforward pass and the attacks are seeded, so the two "
                  "aims craft the same images; the plain aim adds the score at 0 iterations."]
    return lines


def _corruptions(out: Path, preset_epochs: int) -> list[str]:
    folders = [path.parent for path in sorted(out.glob("corruptions-*s*/corruptions.csv"))]
    if not folders:
        return ["Not run yet: `python analyses/cifar10_zoo.py corruptions` once the runs finish."]
    lines = []
    for epochs, group in _by_schedule(folders, preset_epochs).items():
        table = pd.concat([pd.read_csv(folder / "corruptions.csv") for folder in group])
        lines += [f"### {epochs}-epoch runs "
                  f"({', '.join(f.name.removeprefix('corruptions-') for f in group)})", "",
                  *_corruption_tables(table), "",
                  f"![accuracy by severity, {epochs}-epoch runs]"
                  f"({group[0].relative_to(out.parent.parent)}/corruptions.png)", ""]
    return lines[:-1]


def _corruption_tables(table: pd.DataFrame) -> list[str]:
    table = table.assign(column=table["model"] + ", T = " + table["iterations"].astype(str))
    corrupted = table[table["corruption"] != "none"]
    change = (corrupted.pivot_table(index=["model", "corruption", "severity"],
                                    columns="iterations", values="accuracy")
              .sub(corrupted[corrupted["iterations"] == 0]
                   .set_index(["model", "corruption", "severity"])["accuracy"], axis=0))
    mean = (100 * change.groupby("model").mean()).round(1) + 0.0  # no "-0"
    mean.columns = [f"T = {t}" for t in mean.columns]
    best = change.groupby(["model", "corruption"]).mean().idxmax(axis=1)
    pivot = table.pivot_table(index=["corruption", "severity"], columns="column",
                              values="accuracy", sort=False)
    pivot.index = [f"{c} {s}" for c, s in pivot.index]
    return ["Does iterating at test time help under corruption (Fig. 5d on natural images)? The "
            "mean change in accuracy from 0 test iterations, over the "
            f"{corrupted['corruption'].nunique()} corruptions x "
            f"{corrupted['severity'].nunique()} severities (pp; the twin's feedback path is its "
            "tied weights, never trained):", "",
            mean.to_markdown(), "",
            "Best number of test iterations per model and corruption (mean over severities): "
            + "; ".join(f"{m} {c}: {t}" for (m, c), t in best.items()) + ".", "",
            f"Accuracy (%) per corruption and severity ({table['n'].iloc[0]:,} test images):",
            "", (100 * pivot).round(1).to_markdown()]


def render(out: Path) -> str:
    """The page's Markdown from the records under ``out`` (docs/reproduction/cifar10)."""
    runs = _runs(out)
    model = build_model("vgg6", iterations=1)
    widths = ", ".join(map(str, model.config["conv_channels"]))
    # the shipped twin's settings (the first run where the zoo has none yet)
    config = next((run[1] for run in runs if run[0].startswith("cnn-s")),
                  runs[0][1] if runs else {})
    schedules = sorted({run[1]["optim"]["epochs"] for run in runs if run[0].startswith("cnn-")})
    optim, data = config.get("optim", {}), config.get("data", {})
    preset_epochs = optim.get("epochs")
    n_train = round(50_000 * (1 - data.get("val_fraction", 0.1)))
    lines = [
        "# CIFAR-10: natural-image CNN-F models", "",
        "<!-- rendered by `python analyses/cifar10_zoo.py report` from "
        "docs/reproduction/cifar10/: do not edit by hand -->", "",
        "A reduced model, **not the paper's WRN-40-2** (Table 3; still registered as `wrn` for "
        "GPU users): the natural-image backbone that trains on this 2-core CPU.", "",
        "## The backbone: `vgg6`", "",
        f"Three stages of two 3x3 convolutions ({widths} channels), a 2x2 pool after each "
        "stage, a linear read-out; "
        f"{sum(p.numel() for p in model.parameters()):,} parameters. Every conv block is CNN-F's "
        "[conv, RMS norm, bias, AdaReLU, (AdaPool)]; k is the first block's output (the image "
        "is reconstructed there). Input: per-channel mean/sd of the training split, stored in "
        "the checkpoint.", "",
        f"Why this one: the bar is a twin at >= {TARGET_ACCURACY} % test accuracy in <= "
        f"{BUDGET_HOURS} h here, with CNN-F within {MAX_GAP} pp of it, and CNN-F trains several "
        "times slower per step (each step runs the feedforward pass, the generative feedback and a "
        "second pass), so the width, depth and epochs were chosen from the step times below; "
        "k = 1 training iteration (tested at 0..5) keeps CNN-F's epoch affordable. "
        + _verdict(runs, _quiet_rates(out), n_train), "",
        *_bench(out, schedules), "",
        "## Training", "",
        f"SGD (momentum {optim.get('momentum')}, weight decay {optim.get('weight_decay')}), "
        f"lr {optim.get('lr')} with a {optim.get('schedule')} schedule, batch "
        f"{optim.get('batch_size')}, {optim.get('epochs')} epochs (the runs `<model>-s<seed>`; "
        "a run `<model>-e<N>-s<seed>` is the same on N epochs), gradient norm clipped at "
        f"{optim.get('grad_clip')}; random crop after {data.get('augment_pad')}-pixel padding "
        f"and horizontal flips; {100 * data.get('val_fraction', 0):.0f} % of the training images "
        "held out (stratified) to pick the checkpoint; the test set is scored once at the end. "
        "Data: the CIFAR-10 JPEGs (quality 75) of ../shared/data.", "",
        *_training_table(runs, n_train), "",
        "Images/s and times per epoch are those of the runs themselves, which shared the 2 "
        "cores with each other and other work (1 or 2 threads each): the quiet rates are the "
        "benchmark's above.", "",
        "## Robustness (CNN-F and PC minus the twin, image by image)", "",
        *_robustness(out, preset_epochs), "",
        "## Common corruptions (CIFAR-10-C's definitions, generated in the package)", "",
        *_corruptions(out, preset_epochs), "",
    ]
    return "\n".join(lines)
