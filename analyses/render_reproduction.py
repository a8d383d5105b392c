"""Render docs/reproduction.md and the README's headline paragraph from the result files.

    python analyses/render_reproduction.py           # write both (make reproduction-doc)
    python analyses/render_reproduction.py --check   # exit 1 if a committed number is stale

The templates (``analyses/reproduction/*.md``) hold the prose; every measured number in them is
a ``{{name}}`` placeholder, filled here from the CSV/JSON/text results under
``docs/reproduction/`` (and the shipped model cards). A placeholder with no value is an error;
tests/test_reproduction_doc.py renders both and fails when a committed number differs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "reproduction"
TEMPLATES = Path(__file__).resolve().parent / "reproduction"
DOC, README = ROOT / "docs" / "reproduction.md", ROOT / "README.md"
START = "<!-- reproduction-headline: rendered from docs/reproduction by `make reproduction-doc` -->"
END = "<!-- /reproduction-headline -->"
PLACEHOLDER = re.compile(r"\{\{\s*([\w.:-]+)\s*\}\}")
CARDS = ROOT / "neurocnnf" / "pretrained" / "models"


# ---------------------------------------------------------------- formatting
def pct(fraction: float) -> str:
    """An accuracy (fraction) in percent, one decimal: 0.2125 -> '21.2'."""
    return f"{100 * fraction:.1f}"


def pp(value: float, sign: bool = True) -> str:
    """A difference in percentage points, signed: 1.25 -> '+1.2' (-0.0 reads 0.0)."""
    value = 0.0 if abs(value) < 0.05 else value
    return f"{value:+.1f}" if sign else f"{value:.1f}"


def span(low: float, high: float, digits: int = 1) -> str:
    """A range of values: '0.25-0.57', or '-0.24 to -0.17' when it has a sign."""
    sep = " to " if low < 0 else "-"
    return f"{low:.{digits}f}{sep}{high:.{digits}f}"


def interval(low: float, high: float) -> str:
    return f"[{pp(low)}, {pp(high)}]"


def pvalue(p: float) -> str:
    """0.0312 -> '0.03', 8.2e-05 -> '8e-05'."""
    return f"{p:.2f}" if p >= 0.01 else f"{p:.0e}"


def mean_sd(values: Iterable[float]) -> str:
    values = list(values)
    return f"{pp(np.mean(values))} ± {np.std(values, ddof=1):.1f}"


def t_summary(values: Iterable[float]) -> dict[str, str]:
    """Mean ± s.d., the 95 % t interval, t and p of a one-sample t test against 0."""
    values = np.asarray(list(values), dtype=float)
    test = stats.ttest_1samp(values, 0.0)
    low, high = test.confidence_interval(0.95)
    return {"mean_sd": mean_sd(values), "ci": interval(low, high), "t": f"{test.statistic:.2f}",
            "p": pvalue(test.pvalue), "df": str(len(values) - 1), "n": str(len(values)),
            "by": ", ".join(pp(v) for v in values)}


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def md_tables(path: Path) -> list[str]:
    """The markdown tables of a result file, in order."""
    blocks, current = [], []
    for line in path.read_text().splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    return blocks


def md_cell(table: str, row: str, column: str) -> str:
    """One cell of a markdown table: the row whose first cell is ``row``, under ``column``."""
    lines = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    found = [cells for cells in lines[2:] if cells[0] == row]
    if not found or column not in lines[0]:
        raise KeyError(f"no cell ({row!r}, {column!r}) in the table:\n{table}")
    return found[0][lines[0].index(column)]


# ---------------------------------------------------------------- reading results
def seed_of(model: str) -> int:
    """A run's seed from its name (``...-s1/best``); the shipped models are seed 0."""
    found = re.search(r"-s(\d+)(?:/|$)", model)
    return int(found.group(1)) if found else 0


def results(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(RESULTS / path)
    return frame.assign(role=np.where(frame["iterations"] > 0, "cnnf", "cnn"),
                        seed=frame["model"].map(seed_of))


def accuracy(frame: pd.DataFrame, role: str, attack: str, target: str | None = None,
             steps: int | None = None, scoring: str = "last", **where) -> float:
    rows = frame[(frame["role"] == role) & (frame["attack"] == attack)
                 & (frame["scoring"] == scoring)]
    if target is not None:
        rows = rows[rows["target"] == target]
    if steps is not None:
        rows = rows[rows["steps"] == steps]
    for key, value in where.items():
        rows = rows[rows[key] == value]
    if len(rows) != 1:
        raise SystemExit(f"expected one row for {role} {attack} {target} {steps} {where}, "
                         f"found {len(rows)}")
    return float(rows["accuracy"].iloc[0])


def paired(path: Path, attack: str, target: str, steps: int) -> pd.Series:
    frame = pd.read_csv(RESULTS / path)
    row = frame[(frame["attack"] == attack) & (frame["target"] == target)
                & (frame["steps"] == steps)]
    return row.iloc[0]


def card(name: str) -> dict:
    return json.loads((CARDS / f"{name}.json").read_text())


# ---------------------------------------------------------------- sections
N1000_COLUMNS = ["CNN clean", "CNN PGD-40", "CNN APGD-CE", "CNN-F-5 clean", "PGD-40 first",
                 "PGD-40 e2e", "APGD-CE e2e"]


def n1000_row(frame: pd.DataFrame) -> tuple[list[float], float]:
    """One pair's accuracies (the N1000 columns) and CNN-F-5 minus CNN under APGD-CE (pp)."""
    eps = {"eps": 0.05}
    a = [accuracy(frame, "cnn", "clean"), accuracy(frame, "cnn", "pgd", "first", 40, **eps),
         accuracy(frame, "cnn", "apgd-ce"), accuracy(frame, "cnnf", "clean"),
         accuracy(frame, "cnnf", "pgd", "first", 40, **eps),
         accuracy(frame, "cnnf", "pgd", "e2e", 40, **eps), accuracy(frame, "cnnf", "apgd-ce")]
    return a, 100 * (a[6] - a[2])


def six_epochs(v: dict[str, str]) -> list[float]:
    """CNN-F-5 vs its twin at 6 epochs, n = 1,000, seeds 0-2 (fig5-n1000/k5)."""
    frame = results(Path("fig5-n1000/k5/results.csv"))
    rows, gains, table = [], [], []
    for seed, group in frame.groupby("seed"):
        acc, gain = n1000_row(group)
        rows.append(acc)
        gains.append(gain)
        table.append([str(seed), *map(pct, acc), pp(gain)])
        v[f"e6.s{seed}.apgd_gain"] = pp(gain)
        v[f"e6.s{seed}.pgd_first_gain"] = pp(100 * (acc[4] - acc[1]))
        v[f"e6.s{seed}.apgd"], v[f"e6.s{seed}.cnn_apgd"] = pct(acc[6]), pct(acc[2])
    mean = np.mean(rows, axis=0)
    summary = t_summary(gains)
    table.append(["mean", *map(pct, mean), f"**{summary['mean_sd']}**"])
    v["e6.table"] = markdown(["seed", *N1000_COLUMNS, "CNN-F-5 - CNN, APGD-CE (pp)"], table)
    for key, value in summary.items():
        v[f"e6.apgd.{key}"] = value
    for i, name in enumerate(("cnn_clean", "cnn_pgd", "cnn_apgd", "clean", "pgd_first",
                              "pgd_e2e", "apgd")):
        v[f"e6.mean.{name}"] = pct(mean[i])
    pgd_gain = [100 * (min(r[4], r[5]) - r[1]) for r in rows]
    v["e6.pgd.mean_sd"] = mean_sd(pgd_gain)
    v["e6.clean.mean_sd"] = mean_sd(100 * (r[3] - r[0]) for r in rows)
    v["e6.first_gain"] = pp(100 * (mean[4] - mean[1]))
    return gains


PAIRS_15 = {"0": "seed0", "1, best": "seed1", "1, last": "seed1-last", "2": "seed2"}
MATCHED_15 = ("seed0", "seed1-last", "seed2")
PAIRED_ROWS = [("clean", "clean", "e2e", 0), ("PGD-40 first pass", "pgd", "first", 40),
               ("PGD-40 e2e", "pgd", "e2e", 40), ("APGD-CE e2e (100 steps)", "apgd-ce", "e2e", 100),
               ("per-image worst case", "worst-case", "all", 0)]


def paired_cell(row: pd.Series) -> str:
    return (f"{pp(row['difference_pp'])} {interval(row['low_pp'], row['high_pp'])}, "
            f"{row['only_model']} vs {row['only_twin']} images, p = {pvalue(row['mcnemar_p'])}")


def fifteen_epochs(v: dict[str, str]) -> list[float]:
    """CNN-F-5 vs its twin at 15 epochs, n = 1,000 (fig5-15epochs/seed*)."""
    table = []
    epochs_of = {label: (a, b) for label, a, b in checkpoint_epochs()}
    for label, folder in PAIRS_15.items():
        seed = label[0]
        a, b = epochs_of[f"Adam, 15 epochs, seed {seed}" + (", last checkpoints"
                                                             if folder.endswith("last") else "")]
        label = f"{label} ({a} / {b})"
        frame = results(Path(f"fig5-15epochs/{folder}/results.csv"))
        acc, _ = n1000_row(frame)
        worst = paired(Path(f"fig5-15epochs/{folder}/paired.csv"), "worst-case", "all", 0)
        table.append([label, *map(pct, acc), paired_cell(worst)])
        key = folder.replace("-", "_")
        v[f"e15.{key}.worst"] = paired_cell(worst)
        v[f"e15.{key}.worst_pp"] = pp(worst["difference_pp"])
        apgd = paired(Path(f"fig5-15epochs/{folder}/paired.csv"), "apgd-ce", "e2e", 100)
        v[f"e15.{key}.apgd_pp"] = pp(apgd["difference_pp"])
        v[f"e15.{key}.cnn_apgd"] = pct(acc[2])
        v[f"e15.{key}.apgd"] = pct(acc[6])
        v[f"e15.{key}.clean_pp"] = pp(100 * (acc[3] - acc[0]))
    v["e15.table"] = markdown(["seed, checkpoints (CNN-F-5 / CNN epoch)", *N1000_COLUMNS,
                               "CNN-F-5 - CNN, per-image worst case (pp, 95 % interval)"], table)
    rows, apgd = [], []
    for label, attack, target, steps in PAIRED_ROWS:
        diffs = [paired(Path(f"fig5-15epochs/{f}/paired.csv"), attack, target, steps)
                 ["difference_pp"] for f in MATCHED_15]
        s = t_summary(diffs)
        rows.append([label, s["mean_sd"], s["ci"], s["p"]])
        key = f"e15.over.{attack}.{target}"
        v[f"{key}.mean_sd"], v[f"{key}.ci"], v[f"{key}.p"] = s["mean_sd"], s["ci"], s["p"]
        v[f"{key}.by"] = s["by"]
        if attack == "apgd-ce":
            apgd = diffs
    v["e15.over.table"] = markdown(["attack at eps 0.05", "CNN-F-5 - CNN (pp)",
                                    "95 % interval over seeds", "t test p"], rows)
    for seed in (0, 1, 2):
        info = json.loads((RESULTS / f"fig5-15epochs/cnnf5-15-s{seed}-results.json").read_text())
        twin = json.loads((RESULTS / f"fig5-15epochs/cnn15-s{seed}-results.json").read_text())
        v[f"e15.s{seed}.best_epoch"] = str(info["best_epoch"])
        v[f"e15.s{seed}.twin_best_epoch"] = str(twin["best_epoch"])
    return apgd


def sgd(v: dict[str, str]) -> list[float]:
    """The reference's SGD, 6 epochs, seeds 0 and 1 (fig5-sgd/seed*)."""
    table, gains = [], []
    for seed in (0, 1):
        frame = results(Path(f"fig5-sgd/seed{seed}/results.csv"))
        acc, _ = n1000_row(frame)
        row = paired(Path(f"fig5-sgd/seed{seed}/paired.csv"), "apgd-ce", "e2e", 100)
        gains.append(float(row["difference_pp"]))
        cell = (f"{pp(row['difference_pp'])} {interval(row['low_pp'], row['high_pp'])}, "
                f"p = {pvalue(row['mcnemar_p'])}")
        table.append([f"SGD, seed {seed}", *map(pct, acc), cell])
        v[f"sgd.s{seed}.apgd"] = cell
        v[f"sgd.s{seed}.apgd_pp"] = pp(row["difference_pp"])
        v[f"sgd.s{seed}.only"] = f"{row['only_model']} vs {row['only_twin']}"
        first = paired(Path(f"fig5-sgd/seed{seed}/paired.csv"), "pgd", "first", 40)
        e2e = paired(Path(f"fig5-sgd/seed{seed}/paired.csv"), "pgd", "e2e", 40)
        v[f"sgd.s{seed}.first_pp"] = pp(first["difference_pp"])
        v[f"sgd.s{seed}.e2e_pp"] = pp(e2e["difference_pp"])
        v[f"sgd.s{seed}.clean_pp"] = pp(100 * (acc[3] - acc[0]))
    v["sgd.table"] = markdown(["optimizer, seed", *N1000_COLUMNS,
                               "CNN-F-5 - CNN, APGD-CE (pp, paired)"], table)
    return gains


# pairs retrained by analyses/matched_pairs.sh, compared at their last checkpoints:
# comparison -> (folder, CNN-F-5 run, twin run), the runs kept under <folder>/runs/
RETRAINED = {
    **{f"Adam, 15 epochs, seed {s}, CNN-F-5 retrained, last checkpoints":
       ("fig5-15epochs", f"cnnf5-15-s{s}", f"cnn15-s{s}") for s in (1, 2)},
    "Adam, 6 epochs, seed 0, retrained, last checkpoints": ("fig5-n1000", "cnnf5-s0", "cnn-s0"),
    **{f"SGD, 6 epochs, seed {s}, retrained, last checkpoints":
       ("fig5-sgd", f"cnnf5-sgd-s{s}", f"cnn-sgd-s{s}") for s in (0, 1)}}


def checkpoint_epochs() -> list[tuple[str, int, int]]:
    """(comparison, CNN-F-5 epoch, twin epoch) of every n = 1,000 comparison with known
    epochs: the shipped cards, each run's ``results.json`` (``best_epoch``) and, for seed 1's
    last checkpoints, the epochs its ``metrics.jsonl`` records."""
    def best(name: str) -> int:
        return int(json.loads((RESULTS / name).read_text())["best_epoch"])
    last = [len((RESULTS / f"fig5-15epochs/{m}-s1-metrics.jsonl").read_text().splitlines())
            for m in ("cnnf5-15", "cnn15")]
    retrained = [(label, *(len((RESULTS / folder / "runs" / run / "metrics.jsonl")
                               .read_text().splitlines()) for run in runs))
                 for label, (folder, *runs) in RETRAINED.items()
                 if all((RESULTS / folder / "runs" / run).exists() for run in runs)]
    return ([("Adam, 6 epochs, seed 0", card("fmnist-small-cnnf5")["schedule"]["best_epoch"],
              card("fmnist-small-cnn")["schedule"]["best_epoch"])]
            + [(f"Adam, 15 epochs, seed {s}", best(f"fig5-15epochs/cnnf5-15-s{s}-results.json"),
                best(f"fig5-15epochs/cnn15-s{s}-results.json")) for s in range(3)]
            + [("Adam, 15 epochs, seed 1, last checkpoints", *last)]
            + [(f"SGD, 6 epochs, seed {s}", best(f"fig5-sgd/cnnf5-sgd-s{s}-results.json"),
                best(f"fig5-sgd/cnn-sgd-s{s}-results.json")) for s in range(2)] + retrained)


def epochs(v: dict[str, str]) -> None:
    """The checkpoint epochs table and the comparisons that break the matched-epoch rule."""
    pairs = checkpoint_epochs()
    v["epochs.table"] = markdown(
        ["comparison", "CNN-F-5 epoch", "twin epoch", "matched"],
        [[label, str(a), str(b), "yes" if a == b else "**no**"] for label, a, b in pairs])
    by_label = {label: f"{a} / {b}" for label, a, b in pairs}
    for seed in (1, 2):
        label = f"Adam, 15 epochs, seed {seed}, CNN-F-5 retrained, last checkpoints"
        v[f"e15.s{seed}_retrained.epochs"] = by_label.get(label, "(not run yet)")
    v["epochs.broken"] = "; ".join(f"{label} ({a} vs {b})" for label, a, b in pairs if a != b)


def retrained_e2e(table: pd.DataFrame, pair: str) -> float | None:
    """A retrained pair's CNN-F-5 minus twin (pp) under APGD-CE through all 5 iterations
    (``table``: plain-pass/paired.csv), or None before it has run."""
    row = table[(table["pair"] == pair) & (table["attack"] == "apgd-ce")
                & (table["attacked_at"] == 5) & (table["iterations"] == 5)]
    return float(100 * row["difference"].iloc[0]) if len(row) else None


# position among the eight pooled comparisons -> the retrained pair at matched epochs that
# replaces an unmatched one (6 epochs, seed 0: epochs 5 / 6; 15 epochs, seed 2: 15 / 14)
MATCHED_REPLACEMENTS = {
    0: ("Adam, 6 epochs, seed 0, retrained, last checkpoints", "fmnist-6ep-s0-retrained"),
    5: ("Adam, 15 epochs, seed 2, CNN-F-5 retrained, last checkpoints", "fmnist-15ep-s2")}


def pooled(v: dict[str, str], six: list[float], fifteen: list[float], sgd_: list[float]) -> None:
    """All eight CNN-F-5 minus twin APGD-CE comparisons at eps 0.05, n = 1,000, together."""
    known = {label: f"{label} (epochs {a} / {b})" for label, a, b in checkpoint_epochs()}
    labels = [known.get(f"Adam, 6 epochs, seed {s}", f"Adam, 6 epochs, seed {s}")
              for s in range(3)]
    labels += [known[label] for label in ("Adam, 15 epochs, seed 0",
                                          "Adam, 15 epochs, seed 1, last checkpoints",
                                          "Adam, 15 epochs, seed 2")]
    labels += [known[f"SGD, 6 epochs, seed {s}"] for s in range(2)]
    values = [*six, *fifteen, *sgd_]
    table = plain_table()
    for i, (label, pair) in MATCHED_REPLACEMENTS.items():
        matched = retrained_e2e(table, pair)
        if label in known and matched is not None:
            labels[i], values[i] = known[label], matched
    s = t_summary(values)
    for key, value in s.items():
        v[f"pooled.{key}"] = value
    v["pooled.table"] = markdown(["schedule, seed", "CNN-F-5 - CNN, APGD-CE e2e (pp)"],
                                 [[label, pp(x)] for label, x in
                                  zip(labels, values, strict=True)]
                                 + [["**all eight**", f"**{s['mean_sd']}** {s['ci']}"]])
    v["pooled.positive"] = str(sum(x > 0 for x in values))


def fig5_grid(v: dict[str, str]) -> None:
    """The n = 200 eps grid over seeds 0-2 (fig5_table.md, fig5_points.csv)."""
    stronger, gains, every = md_tables(RESULTS / "fig5_table.md")
    v["grid.stronger"], v["grid.gains"], v["grid.every"] = stronger, gains, every
    points = pd.read_csv(RESULTS / "fig5_points.csv")
    at = points[(points["attack"] == "pgd") & (points["steps"] == 40) & (points["eps"] == 0.1)
                & (points["target"] == "stronger")].groupby("label")["accuracy"].mean()
    v["grid.pgd01.low"], v["grid.pgd01.high"] = pct(at.min()), pct(at.max())
    at05 = points[(points["attack"] == "pgd") & (points["steps"] == 40)
                  & (points["eps"] == 0.05) & (points["target"] == "stronger")]
    means = at05.groupby("label")["accuracy"].mean()
    v["grid.pgd005.low"], v["grid.pgd005.high"] = pct(means.min()), pct(means.max())
    report = (RESULTS / "masking_report.txt").read_text()
    v["grid.masking.pass"] = str(report.count("[PASS]"))
    v["grid.masking.fail"] = str(report.count("[FAIL]"))
    curves = md_tables(RESULTS / "fig5-15epochs/curves/fig5_table.md")
    v["e15.grid.stronger"], v["e15.grid.gains"] = curves[0], curves[1]
    v["e15.grid.gain005"] = md_cell(curves[1], "CNN-F-5", "0.05")


def fig5d(v: dict[str, str]) -> None:
    """CNN-F-5 scored after 0..10 test iterations, PGD-40 on the first pass (n = 200)."""
    frame = pd.concat([pd.read_csv(RESULTS / f"cnnf5-s{s}.csv").assign(seed=s)
                       for s in range(3)])
    sweep = frame[frame["sweep"] == "test_iterations"]
    shown = (0, 1, 2, 5, 10)
    rows = []
    for eps, group in sweep.groupby("eps"):
        means = group.groupby("iterations")["accuracy"].mean()
        rows.append(["clean" if eps == 0 else f"eps {eps:g}", *(pct(means[t]) for t in shown)])
        if eps == 0.05:
            by_seed = group.pivot_table(index="seed", columns="iterations", values="accuracy")
            v["fig5d.005"] = " -> ".join(pct(means[t]) for t in (0, 5, 10))
            v["fig5d.005.by_seed"] = "; ".join(
                f"seed {s} " + " -> ".join(pct(by_seed.loc[s, t]) for t in (0, 5, 10))
                for s in by_seed.index)
    v["fig5d.table"] = markdown(["test iterations", *map(str, shown)], rows)


def plain_n200(v: dict[str, str]) -> None:
    """The plain pass at n = 200 from the Fig. 5d sweep: PGD-40 made on CNN-F-5's first pass and
    scored at 0 iterations, minus the same seed's CNN twin under PGD-40 (eps 0.05)."""
    gains, e2e = [], []
    for seed in range(3):
        cnnf = pd.read_csv(RESULTS / f"cnnf5-s{seed}.csv")
        cnn = pd.read_csv(RESULTS / f"cnn-s{seed}.csv")
        plain = cnnf[(cnnf["sweep"] == "test_iterations") & (cnnf["iterations"] == 0)
                     & (cnnf["eps"] == 0.05)]["accuracy"].item()
        main = cnnf[cnnf["sweep"].isna() & (cnnf["attack"] == "pgd") & (cnnf["eps"] == 0.05)
                    & (cnnf["steps"] == 40)]["accuracy"].min()
        twin = cnn[cnn["sweep"].isna() & (cnn["attack"] == "pgd") & (cnn["eps"] == 0.05)
                   & (cnn["steps"] == 40)]["accuracy"].min()
        gains.append(100 * (plain - twin))
        e2e.append(100 * (main - twin))
    v["plain200.by"] = ", ".join(pp(g) for g in gains)
    v["plain200.all.by"] = ", ".join(pp(g) for g in e2e)


DIFFICULTY = {"noise": "noise (sd)", "blur": "blur (sigma, px)",
              "occlusion": "occlusion (fraction)", "adversarial": "PGD-10 on the first pass (eps)"}


def resampling(correlations: list[dict]) -> str:
    """What each seed's bootstrap resampled: whole images (a summary with ``n_groups``) or
    image x level rows (summaries written before the whole-image bootstrap)."""
    whole = [i for i, c in enumerate(correlations) if "n_groups" in c]
    rows = [i for i, c in enumerate(correlations) if "n_groups" not in c]
    def seeds(ids: list[int]) -> str:
        if len(ids) == 1:
            return f"seed {ids[0]}"
        return "seeds " + ", ".join(map(str, ids[:-1])) + f" and {ids[-1]}"

    parts = []
    if whole:
        parts.append(f"{seeds(whole)} whole images ({correlations[whole[0]]['n_groups']})")
    if rows:
        parts.append(f"{seeds(rows)} image x level rows")
    return "; ".join(parts)


def difficulty(v: dict[str, str], key: str, folders: tuple[str, ...]) -> None:
    """Recurrence vs difficulty (settling iteration vs perturbation level), one row per kind."""
    rows = []
    for kind, label in DIFFICULTY.items():
        summaries = [json.loads((RESULTS / f / f"{kind}_summary.json").read_text())
                     for f in folders]
        rho = [f"{s['settling_vs_level']['rho']:.2f} [{s['settling_vs_level']['ci_low']:.2f}, "
               f"{s['settling_vs_level']['ci_high']:.2f}]" for s in summaries]
        settle = "; ".join(
            f"{list(s['mean_settling_by_level'].values())[0]:.2f} -> "
            f"{list(s['mean_settling_by_level'].values())[-1]:.2f}" for s in summaries)
        gain = " / ".join(pp(100 * list(s["accuracy_gain_by_level"].values())[-1])
                          for s in summaries)
        rows.append([label, *rho, settle, gain])
        values = [s["settling_vs_level"]["rho"] for s in summaries]
        v[f"{key}.{kind}.rho"] = span(min(values), max(values), 2)
        extra = [list(s["mean_settling_by_level"].values())[-1]
                 - list(s["mean_settling_by_level"].values())[0] for s in summaries]
        v[f"{key}.{kind}.extra"] = span(min(extra), max(extra))
    v[f"{key}.resampling"] = resampling([json.loads(
        (RESULTS / f / "noise_summary.json").read_text())["settling_vs_level"] for f in folders])
    v[f"{key}.table"] = markdown(
        ["perturbation", *(f"rho(settling, level): seed {i}" for i in range(len(folders))),
         "mean settling, lowest -> highest level (by seed)",
         "accuracy change, plain pass -> 10 iterations, highest level (pp, by seed)"], rows)
    clean = [list(json.loads((RESULTS / f / "noise_summary.json").read_text())
                  ["mean_settling_by_level"].values())[0] for f in folders]
    v[f"{key}.clean_settling"] = span(min(clean), max(clean))


def fig6(v: dict[str, str]) -> None:
    """Distance of h_hat_t to the clean features, with the clean control (fig6_summary_*.txt)."""
    for key, name in (("e6", "fig6_summary_cnnf5.txt"), ("e15", "fig6_summary_cnnf5_15ep.txt")):
        lines = (RESULTS / name).read_text().splitlines()
        right = re.search(r"(\d+) of (\d+)", lines[0])
        v[f"fig6.{key}.right"] = f"{right.group(1)} of {right.group(2)}"
        rows, moves = [], {}
        for line in lines[2:]:
            kind, values = line.strip().split(":")
            numbers = [float(x) for x in values.split()]
            moves[kind] = numbers[-1] - numbers[0]
            rows.append([kind, *(f"{x:.3f}" for x in numbers), f"{moves[kind]:+.3f}"])
        header = ["kind", *(f"t = {t}" for t in range(len(rows[0]) - 2)), "change"]
        v[f"fig6.{key}.table"] = markdown(header, rows)
        net = {k: m - moves["clean"] for k, m in moves.items() if k != "clean"}
        v[f"fig6.{key}.net"] = ", ".join(f"{k} {m:+.3f}" for k, m in net.items())
        v[f"fig6.{key}.clean"] = f"{moves['clean']:+.3f}"
        v[f"fig6.{key}.noise"] = f"{moves['noise']:+.3f}"


def table2(v: dict[str, str]) -> None:
    """Table 2: ours (stronger attacks and, where run, the paper's settings) and the paper's."""
    ours = results(Path("table2/results.csv"))
    spsa = results(Path("table2/spsa/results.csv"))
    paper_file = RESULTS / "table2" / "paper-settings" / "pgd7.csv"
    paper7 = results(paper_file.relative_to(RESULTS)) if paper_file.exists() else None
    spsa_file = paper_file.with_name("spsa7.csv")
    spsa7 = results(spsa_file.relative_to(RESULTS)) if spsa_file.exists() else None
    v["t2.spsa7.status"] = "SPSA-7 on the first 100 images" if spsa7 is not None else \
        "SPSA-7 not yet run: `analyses/table2_paper_attacks.py --spsa`"
    rows = []
    for label, role, scoring in (("CNN", "cnn", "last"), ("CNN-F (last)", "cnnf", "last"),
                                 ("CNN-F (avg)", "cnnf", "avg")):
        def a(frame, attack, target=None, steps=None, role=role, scoring=scoring):
            if frame is None:
                return ""
            if role == "cnn" and target == "e2e":
                target = "first" if attack == "spsa" else target
            try:
                return pct(accuracy(frame, role, attack, target, steps, scoring,
                                    **({"eps": 0.1} if attack != "clean" else {})))
            except SystemExit:
                return "-"
        rows.append([label, a(ours, "clean"), a(paper7, "pgd", "first", 7),
                     a(paper7, "pgd", "e2e", 7), a(spsa7, "spsa", "first", 7),
                     a(spsa7, "spsa", "e2e", 7), a(paper7, "transfer"),
                     a(ours, "pgd", "first", 40), a(ours, "pgd", "e2e", 40),
                     a(spsa, "spsa", "first", 20), a(spsa, "spsa", "e2e", 20),
                     a(ours, "transfer"), a(ours, "apgd-ce"), a(ours, "worst-case")])
    paper = pd.read_csv(RESULTS / "table2" / "paper.csv")
    for r in paper.itertuples():
        transfer = "" if pd.isna(r.transfer) else f"{r.transfer:.2f}"
        rows.append([f"paper {r.model}", f"{r.clean:.2f}", f"{r.pgd_first:.2f}",
                     f"{r.pgd_e2e:.2f}", f"{r.spsa_first:.2f}", f"{r.spsa_e2e:.2f}", transfer,
                     "", "", "", "", "", "", ""])
    v["t2.table"] = markdown(["model", "clean", "PGD-7 first (paper's)", "PGD-7 e2e (paper's)",
                              "SPSA-7 first (paper's)", "SPSA-7 e2e (paper's)",
                              "transfer PGD-7 (paper's)", "PGD-40 first", "PGD-40 e2e",
                              "SPSA-20 first", "SPSA-20 e2e", "transfer PGD-40", "APGD-CE e2e",
                              "per-image worst"], rows)
    if paper7 is not None:  # the paper's Min column under its own PGD-7 and transfer
        for label, scoring in (("last", "last"), ("avg", "avg")):
            least = min(accuracy(paper7, "cnnf", a, t, 7, scoring, eps=0.1)
                        for a, t in (("pgd", "first"), ("pgd", "e2e"), ("transfer", "first")))
            twin = accuracy(paper7, "cnn", "pgd", "first", 7, eps=0.1)
            gap = pp(100 * (least - twin))
            v[f"t2.paper7.{label}"] = f"{pct(least)} vs {pct(twin)} % ({gap} pp)"
    minimum = paper[["pgd_first", "pgd_e2e", "spsa_first", "spsa_e2e", "transfer"]].min(axis=1)
    for i, key in ((1, "last"), (2, "avg")):
        v[f"t2.paper.gain_{key}"] = f"{minimum[i] - minimum[0]:+.2f}"
    for label, scoring in (("last", "last"), ("avg", "avg")):
        v[f"t2.{label}.apgd_pp"] = pp(100 * (accuracy(ours, "cnnf", "apgd-ce", scoring=scoring)
                                             - accuracy(ours, "cnn", "apgd-ce")))
        v[f"t2.{label}.pgd_pp"] = pp(100 * (accuracy(ours, "cnnf", "pgd", "e2e", 40,
                                                     scoring=scoring, eps=0.1)
                                            - accuracy(ours, "cnn", "pgd", "e2e", 40, eps=0.1)))
    v["t2.clean"] = pct(card("fmnist-adv-cnnf1")["accuracy"]["test_full"]["acc_last"])
    v["t2.clean_cnn"] = pct(card("fmnist-adv-cnn")["accuracy"]["test_full"]["acc_last"])
    v["t2.cnn.pgd"] = pct(accuracy(ours, "cnn", "pgd", "e2e", 40, eps=0.1))
    v["t2.cnnf.pgd"] = pct(accuracy(ours, "cnnf", "pgd", "e2e", 40, eps=0.1))
    v["t2.cnn.apgd"] = pct(accuracy(ours, "cnn", "apgd-ce"))
    v["t2.cnnf.apgd"] = pct(accuracy(ours, "cnnf", "apgd-ce"))


def clean_cards(v: dict[str, str]) -> None:
    """Seed 0's full-test-set clean accuracy (last logits) from the shipped model cards."""
    for name in ("cnn", "cnnf1", "cnnf2", "cnnf5", "pc", "cnnf5-15ep", "cnn-15ep"):
        c = card(f"fmnist-small-{name}")
        v[f"card.{name}.clean"] = f"{100 * c['accuracy']['test_full']['acc_last']:.2f}"
        v[f"card.{name}.best_epoch"] = str(c["schedule"]["best_epoch"])


PLAIN = RESULTS / "plain-pass"
PLAIN_ATTACKS = (("apgd-ce", "APGD-CE"), ("apgd-dlr", "APGD-DLR"), ("square", "Square"),
                 ("worst-case", "per-image worst case"), ("pgd", "PGD-40"))
PLAIN_PAIRS = {"fmnist-6ep": "6 epochs, seed 0 (CNN-F-5 vs CNN)",
               "fmnist-6ep-s1": "6 epochs, seed 1, retrained, last checkpoints (CNN-F-5 vs CNN)",
               "fmnist-6ep-s2": "6 epochs, seed 2, retrained, last checkpoints (CNN-F-5 vs CNN)",
               "fmnist-6ep-s0-retrained": "6 epochs, seed 0, retrained, last checkpoints "
                                          "(CNN-F-5 vs CNN)",
               "fmnist-15ep": "15 epochs, seed 0 (CNN-F-5 vs CNN)",
               **{f"fmnist-15ep-s{s}": f"15 epochs, seed {s}, CNN-F-5 retrained, last "
                  "checkpoints (CNN-F-5 vs CNN)" for s in (1, 2)},
               **{f"fmnist-sgd-s{s}": f"SGD, 6 epochs, seed {s}, retrained, last checkpoints "
                  "(CNN-F-5 vs CNN)" for s in (0, 1)},
               "fmnist-6ep-ablation": "6 epochs, seed 0 (CNN-F-5 vs ablation twin)",
               **{f"fmnist-6ep-n200-cnnf{k}": f"6 epochs, seed 0, n = 200 (CNN-F-{k} vs CNN)"
                  for k in (1, 2, 5)},
               "fmnist-6ep-ablation-n200": "6 epochs, seed 0, n = 200 (CNN-F-5 vs ablation twin)"}


def plain_table() -> pd.DataFrame:
    """plain-pass/paired.csv, or an empty table with its columns before anything has run."""
    path = PLAIN / "paired.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame(
        columns=["pair", "attack", "attacked_at", "iterations", "difference", "low"])


def plain_pass(v: dict[str, str]) -> None:
    """The plain pass (0 iterations) vs all iterations, paired against the twin
    (plain-pass/paired.csv), beside the runs through all iterations of the sections below."""
    table = plain_table()
    for pair in PLAIN_PAIRS:  # what has not run yet says so
        for key in ("scored", "scored_gain", "cnnf_t0"):
            v[f"plain.{pair}.{key}"] = "(not run yet)"
        for attack, _ in PLAIN_ATTACKS:
            for t in (0, 5):
                v[f"plain.{pair}.{attack}.t{t}"] = v[f"plain.{pair}.{attack}.t{t}.pp"] = \
                    "(not run yet)"
        v[f"plain.{pair}.worst-case.over"] = "the attacks run"
    rows = []
    through = {"fmnist-6ep": ("APGD-CE", "5, earlier run (unpaired)", *n1000_row(
        results(Path("fig5-n1000/k5/results.csv")).query("seed == 0"))[0][2::4]),
               "fmnist-15ep": ("APGD-CE", "5, earlier run", *n1000_row(
                   results(Path("fig5-15epochs/seed0/results.csv")))[0][2::4])}
    for pair, label in PLAIN_PAIRS.items():
        done = table[(table["pair"] == pair) & (table["attacked_at"] == table["iterations"])]
        for attack, name in PLAIN_ATTACKS:
            for x in done[done["attack"] == attack].itertuples():
                cell = (f"{pp(x.difference * 100)} {interval(100 * x.low, 100 * x.high)}, "
                        f"{x.only_cnnf} vs {x.only_twin}, p = {pvalue(x.p)}")
                over = f" ({x.over})" if attack == "worst-case" else ""
                if attack == "worst-case":
                    names = dict(PLAIN_ATTACKS)
                    v[f"plain.{pair}.worst-case.over"] = ", ".join(
                        names[a] for a in str(x.over).split(", "))
                rows.append([label, name + over, str(x.iterations), pct(x.cnnf), pct(x.twin),
                             cell])
                v[f"plain.{pair}.{attack}.t{x.iterations}"] = (
                    f"{pct(x.cnnf)} vs {pct(x.twin)} % ({cell})")
                v[f"plain.{pair}.{attack}.t{x.iterations}.pp"] = pp(100 * x.difference)
        if len(done) and pair in through:
            name, t, twin, cnnf = through[pair]
            rows.append([label, name, t, pct(cnnf), pct(twin), pp(100 * (cnnf - twin))])
    v["plain.table"] = markdown(["pair", "attack (eps 0.05, e2e)", "CNN-F test iterations",
                                 "CNN-F", "twin", "CNN-F - twin (pp, 95 % interval), images "
                                 "right only in CNN-F vs only in the twin, McNemar p"],
                                rows) if rows else "(not run yet)"
    todo = []
    for pair in (*TWIN_PAIRS, "fmnist-6ep-ablation"):
        ran = set(table[table["pair"] == pair]["attack"])
        missing = [name for attack, name in PLAIN_ATTACKS[:3] if attack not in ran]
        if missing:
            todo.append(f"{PLAIN_PAIRS[pair]}: {', '.join(missing)}")
    v["plain.todo"] = (f"the plain-pass attacks at n = 1,000 not yet run ({'; '.join(todo)}); "
                       if todo else "")
    through = table[(table["pair"] == "fmnist-6ep") & (table["attacked_at"] > 0)]
    names = dict(PLAIN_ATTACKS)
    missing = [names[a] for a in ("apgd-dlr", "square") if a not in set(through["attack"])]
    v["plain.through_todo"] = (f"{' and '.join(missing)} through all the iterations (paired "
                               "with the twin, n = 1,000); " if missing else "")
    ablation = {"fmnist-6ep-ablation", "fmnist-6ep-ablation-n200"} & set(table["pair"])
    v["plain.ablation.status"] = "in the table below" if ablation else \
        "not evaluated: the twin had not finished training"
    v["plain.ablation_vs_cnn"] = v["ablation.epoch"] = "(not run yet)"
    both = table[(table["attack"] == "pgd") & (table["iterations"] == 0)].set_index("pair")
    if {"fmnist-6ep-ablation-n200", "fmnist-6ep-n200-cnnf5"} <= set(both.index):
        v["plain.ablation_vs_cnn"] = pp(100 * (both.loc["fmnist-6ep-ablation-n200", "twin"]
                                               - both.loc["fmnist-6ep-n200-cnnf5", "twin"]))
        run = json.loads((RESULTS / "ablation-twin" / "results.json").read_text())
        v["ablation.epoch"] = str(run["best_epoch"])
        v["ablation.clean"] = f"{100 * run['test']['acc_last']:.2f}"
    scored = table[(table["attack"] == "apgd-ce") & (table["attacked_at"] == 0)]
    rows = []
    for pair, group in scored.groupby("pair", sort=False):
        group = group.sort_values("iterations")
        if len(group) < 2:
            continue
        rows.append([PLAIN_PAIRS[pair], *(pct(a) for a in group["cnnf"])])
        v[f"plain.{pair}.scored"] = " -> ".join(pct(a) for a in group["cnnf"])
        v[f"plain.{pair}.scored_gain"] = pp(100 * (group["cnnf"].iloc[-1]
                                                   - group["cnnf"].iloc[0]))
        v[f"plain.{pair}.cnnf_t0"] = pct(group["cnnf"].iloc[0])
    through_table(v, table)
    all_pairs(v, table)
    width = max((len(r) for r in rows), default=1) - 1
    v["plain.scored.table"] = markdown(
        ["model", *(f"{t} iterations" for t in range(width))], rows) if rows else \
        "(not run yet)"


TWIN_PAIRS = ("fmnist-6ep", "fmnist-6ep-s0-retrained", "fmnist-6ep-s1", "fmnist-6ep-s2",
              "fmnist-15ep", "fmnist-15ep-s1", "fmnist-15ep-s2", "fmnist-sgd-s0",
              "fmnist-sgd-s1")  # CNN-F-5 against its plain CNN twin on 1,000 images


def all_pairs(v: dict[str, str], table: pd.DataFrame) -> None:
    """Every CNN-F-5 / CNN twin pair attacked on 1,000 images under APGD-CE: the plain pass's
    gain (attacked and scored at 0 iterations) and the gain through the 5 iterations."""
    apgd = table[table["pair"].isin(TWIN_PAIRS) & (table["attack"] == "apgd-ce")
                 & (table["attacked_at"] == table["iterations"])]
    for t in (0, 5):
        rows = apgd[apgd["iterations"] == t]
        v[f"plain.all.t{t}.n"] = str(len(rows))
        v[f"plain.all.t{t}.range"] = (f"{pp(100 * rows['difference'].min())} to "
                                      f"{pp(100 * rows['difference'].max())}"
                                      if len(rows) else "(not run yet)")
        v[f"plain.all.t{t}.above"] = str(int((rows["low"] > 0).sum()))


def through_table(v: dict[str, str], table: pd.DataFrame) -> None:
    """CNN-F-5 (6 epochs, seed 0) attacked with APGD-CE through t = 0..5 iterations and scored
    after them, paired with the twin: how fast running the iterations takes the gain back."""
    rows = table[(table["pair"] == "fmnist-6ep") & (table["attack"] == "apgd-ce")
                 & (table["attacked_at"] == table["iterations"])].sort_values("iterations")
    v["plain.through.table"] = markdown(
        ["attacked through (and scored after) t iterations", "CNN-F-5", "twin",
         "CNN-F-5 - twin (pp, 95 % interval)", "McNemar p"],
        [[str(x.iterations), pct(x.cnnf), pct(x.twin),
          f"{pp(100 * x.difference)} {interval(100 * x.low, 100 * x.high)}", pvalue(x.p)]
         for x in rows.itertuples()]) if len(rows) else "(not run yet)"
    v["plain.through.steps"] = " -> ".join(pp(100 * d) for d in rows["difference"])
    missing = [t for t in range(1, 5) if t not in set(rows["iterations"])]
    v["plain.through_k_todo"] = (
        f"CNN-F-5 attacked through {', '.join(map(str, missing))} of its 5 iterations; "
        if missing else "")


CIFAR = {15: RESULTS / "cifar10" / "paired-s0.csv", 90: RESULTS / "cifar10" / "paired-e90-s0.csv"}
CIFAR_ATTACKS = {"apgd-ce": "APGD-CE", "pgd": "PGD-40"}


def cifar10_plain(v: dict[str, str]) -> None:
    """The natural-image models (docs/cifar10.md, seed 0, n = 1,000) on each schedule that was
    evaluated: each CNN-F minus the twin with its plain pass attacked and scored at 0
    iterations, the same examples scored after its T iterations, and attacked through the
    iterations (e2e); the text's ``c10.*`` values are the 15-epoch runs', ``c10e90.*`` the
    90-epoch runs' (APGD-CE at 2/255)."""
    columns = ("plain0", "plainT", "e2e")
    rows = []
    for prefix in ("c10", "c10e90"):
        for model in ("cnnf1", "pc1"):
            for key in (*columns, "twin", "cnnf"):
                v[f"{prefix}.{model}.{key}"] = "(not run yet)"
    for epochs, path in CIFAR.items():
        if not path.exists():
            continue
        cell = {}
        for x in pd.read_csv(path).itertuples():
            column = "e2e" if x.aim == "e2e" else "plain0" if x.scored_t == 0 else "plainT"
            if x.attack in CIFAR_ATTACKS and x.aim in ("e2e", "plain"):
                cell[x.model, x.attack, round(255 * x.eps), column] = x
        for model, attack, eps in sorted({k[:3] for k in cell}):
            found = [cell.get((model, attack, eps, c)) for c in columns]
            cells = ["" if x is None else f"{pp(100 * x.difference)} "
                     f"{interval(100 * x.low, 100 * x.high)}" for x in found]
            rows.append([str(epochs), model, CIFAR_ATTACKS[attack], f"{eps}/255", *cells])
            key = {"CNN-F-1": "cnnf1", "PC-1": "pc1"}.get(model)
            if key and attack == "apgd-ce" and eps == 2 and None not in found:
                prefix = "c10" if epochs == 15 else f"c10e{epochs}"
                v.update({f"{prefix}.{key}.{c}": text
                          for c, text in zip(columns, cells, strict=True)})
                v[f"{prefix}.{key}.twin"] = pct(found[2].twin_accuracy)
                v[f"{prefix}.{key}.cnnf"] = pct(found[2].accuracy)
    v["c10.table"] = markdown(
        ["epochs", "model", "attack", "eps", "plain pass, scored at 0 iterations",
         "the same examples scored after T", "through the iterations (e2e)"],
        rows) if rows else "(not run yet)"


SECTIONS: tuple[Callable[[dict[str, str]], object], ...] = (
    fig5_grid, fig5d, fig6, table2, clean_cards, plain_pass, plain_n200, epochs,
    cifar10_plain)


def values() -> dict[str, str]:
    """Every placeholder's value, from the result files."""
    v: dict[str, str] = {}
    six, fifteen, sgd_ = six_epochs(v), fifteen_epochs(v), sgd(v)
    pooled(v, six, fifteen, sgd_)
    for section in SECTIONS:
        section(v)
    difficulty(v, "diff6", ("difficulty", "difficulty-s1", "difficulty-s2"))
    difficulty(v, "diff15", ("difficulty-15", "difficulty-15-s1-retrained",
                               "difficulty-15-s2-retrained"))
    todo = "".join(v[f"plain.{key}"] for key in ("todo", "through_todo", "through_k_todo"))
    v["plain.missing"] = (f"\nStill missing as well: {todo}the rest is in the sections "
                          "below." if todo else "")
    return v


def render(template: str, v: dict[str, str]) -> str:
    """``template`` with every ``{{name}}`` replaced; an unknown name is an error."""
    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in v:
            raise SystemExit(f"template placeholder {{{{{name}}}}} has no value in the results")
        return v[name]
    return PLACEHOLDER.sub(fill, template)


def rendered(v: dict[str, str] | None = None) -> tuple[str, str]:
    """(docs/reproduction.md, README.md) as the result files give them (``v``: the values,
    when already read)."""
    v = values() if v is None else v
    doc = render((TEMPLATES / "reproduction.md").read_text(), v)
    headline = render((TEMPLATES / "readme_headline.md").read_text(), v).strip()
    readme = README.read_text()
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the headline markers {START!r} ... {END!r}")
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return doc, f"{before}{START}\n{headline}\n{END}{after}"


def write_atomic(path: Path, text: str) -> None:
    path.with_suffix(".tmp").write_text(text)
    path.with_suffix(".tmp").replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed files instead of writing them")
    args = parser.parse_args()
    doc, readme = rendered()
    if args.check:
        stale = [p.name for p, text in ((DOC, doc), (README, readme)) if p.read_text() != text]
        if stale:
            sys.exit(f"stale numbers in {', '.join(stale)}: run `make reproduction-doc`")
        return
    write_atomic(DOC, doc)
    write_atomic(README, readme)


if __name__ == "__main__":
    main()
