"""Reproduce the paper's Fig. 5 (standard training, Fashion-MNIST) from trained run folders.

    python analyses/reproduce_fig5.py evaluate RUN [RUN ...] --out results/fig5   # per model
    python analyses/reproduce_fig5.py figures --out results/fig5                   # combine
    python analyses/reproduce_fig5.py register RUN --name NAME ...               # ship a model

`evaluate` writes one CSV per run (skipped when it exists, so the step resumes): clean; FGSM
and PGD-40 aimed at the first pass and end to end (e2e) over the eps grid; APGD-CE (e2e) at
the table's eps; for CNN-F models trained with T >= 5, the Fig. 5d sweep (PGD-40 on the first
pass, scored after 0..10 test iterations). A predictive-coding comparator run (fmnist_pc) is
labelled PC-k: it joins Fig. 5a/b and the tables, not Fig. 5c/d. `figures` takes, per
point, the stronger of the first/e2e attacks (the paper's rule, sec. 3.1), draws Fig. 5a-d with
error bars over seeds and writes the gradient-masking report. Everything goes through
neurocnnf's attacks and figures.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import pandas as pd
import torch

from neurocnnf.attacks import AttackSpec
from neurocnnf.attacks.evaluate import WORST_CASE, evaluate, make_adversarial, predict
from neurocnnf.attacks.masking import format_report, masking_report
from neurocnnf.attacks.paired import over_models
from neurocnnf.attacks.tables import markdown
from neurocnnf.device import resolve_device
from neurocnnf.pipelines.robustness import test_images
from neurocnnf.train import load_model
from neurocnnf.viz import robustness as fig
from neurocnnf.viz.style import SEED_T_CI, save_figure

EPS_GRID = (0.02, 0.05, 0.1, 0.2)
TABLE_EPS = 0.1
STEPS = 40
PER_IMAGE = "per-image worst"  # the table column of the per-image worst case over attacks


def sweep_specs(eps_grid: tuple[float, ...] = EPS_GRID) -> list[AttackSpec]:
    """Clean; FGSM and PGD-40 on both targets at every eps; PGD-10 (the more-steps check),
    APGD-CE (e2e) and transfer from the CNN twin at the table's eps; PGD-40 at eps 0.5 (the
    large-eps check)."""
    specs = [AttackSpec("clean")]
    for eps in eps_grid:
        for target in ("first", "e2e"):
            specs += [AttackSpec("fgsm", eps, target), AttackSpec("pgd", eps, target, STEPS)]
    specs += [AttackSpec("pgd", TABLE_EPS, "first", STEPS // 4),
              AttackSpec("apgd-ce", TABLE_EPS, "e2e", 50),
              AttackSpec("transfer", TABLE_EPS, "first", STEPS),
              AttackSpec("pgd", 0.5, "first", STEPS)]
    return specs


def test_iteration_sweep(model, images, labels, name: str, label: str,
                         iterations=range(11), batch_size: int = 250) -> pd.DataFrame:
    """Fig. 5d: PGD-40 examples made once per eps on the first pass, scored after each number
    of test iterations (the examples do not depend on it)."""
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    rows = []
    for eps in (0.0, *EPS_GRID):
        spec = AttackSpec("pgd", eps, "first", STEPS) if eps else AttackSpec("clean")
        adversarial = torch.cat([
            make_adversarial(spec, model, images[s:s + batch_size], labels[s:s + batch_size],
                             "last", torch.Generator().manual_seed(zlib.crc32(repr(spec).encode())
                                                                   + s))
            for s in range(0, len(labels), batch_size)])
        for t in iterations:
            correct = (predict(model, adversarial, "last", iterations=t) == labels).float()
            rows.append({"model": name, "label": label, "iterations": t,
                         "trained_iterations": model.iterations, "scoring": "last",
                         "attack": spec.attack, "eps": eps, "target": "first",
                         "steps": spec.steps, "accuracy": float(correct.mean()),
                         "n": len(labels), "sweep": "test_iterations"})
    return pd.DataFrame(rows)


def evaluate_run(run: Path, out: Path, n: int, twin: Path | None = None,
                 device: str = "cpu", checkpoint: str = "best") -> Path:
    """One run folder -> ``out/<run name>.csv`` (kept if it already exists), from its
    ``<checkpoint>.safetensors`` (``last``: the matched epoch of a pair that trained the same
    epochs). ``twin``: the plain CNN whose PGD-40 examples the transfer attack scores (omitted
    without it; the same checkpoint is taken)."""
    target = out / f"{run.name}.csv"
    if target.exists():
        return target
    model = load_model(run / f"{checkpoint}.safetensors", map_location=device)
    images, labels = test_images("fashion_mnist", n)
    trained = model.iterations
    predictive = model.config.get("arch") == "fmnist_pc"  # the predictive-coding comparator
    label = "CNN" if trained == 0 else f"{'PC' if predictive else 'CNN-F'}-{trained}"
    name = run.name
    transfer = twin is not None and trained > 0  # a CNN's transfer attack is its own PGD
    specs = [s for s in sweep_specs() if transfer or s.attack != "transfer"]
    twin_model = (load_model(twin / f"{checkpoint}.safetensors", map_location=device)
                  if transfer else None)
    frames = [evaluate(model, images, labels, specs, scorings=("last",), name=name, label=label,
                       twin=twin_model).assign(sweep="")]
    if trained >= 5 and not predictive:
        frames.append(test_iteration_sweep(model, images, labels, name, label))
    out.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_csv(target.with_suffix(".tmp"), index=False)
    target.with_suffix(".tmp").replace(target)
    return target


def stronger_of_targets(results: pd.DataFrame) -> pd.DataFrame:
    """Per model, attack, eps and steps: the lower accuracy of the first and e2e attacks, as
    target 'stronger' (the paper reports the stronger attack per point)."""
    attacked = results[results["attack"].isin(["fgsm", "pgd"])]
    keys = ["model", "label", "iterations", "trained_iterations", "scoring", "attack", "eps",
            "steps"]
    stronger = attacked.groupby(keys, as_index=False).agg(accuracy=("accuracy", "min"),
                                                           n=("n", "first"))
    return pd.concat([results[results["attack"] == "clean"], stronger.assign(target="stronger")])


def figures(out: Path) -> None:
    """Fig. 5a-d, the stronger-attack table and the masking report from ``out/*.csv``."""
    results = pd.concat([pd.read_csv(p) for p in sorted(out.glob("*.csv"))
                         if p.name != "fig5_points.csv"], ignore_index=True)
    results["sweep"] = results["sweep"].astype(object).where(results["sweep"].notna(), "")
    main = results[(results["sweep"] == "")
                   & ~((results["attack"] == "transfer") & (results["trained_iterations"] == 0))]
    points = stronger_of_targets(main)
    points.to_csv(out / "fig5_points.csv", index=False)
    # the curves: FGSM and PGD-40 over the grid (not the PGD-10 and eps-0.5 check rows)
    curves = points[((points["attack"] != "pgd") | (points["steps"] == STEPS))
                    & (points["eps"] <= max(EPS_GRID))]
    for attack, name in (("fgsm", "fig5a_fgsm.png"), ("pgd", "fig5b_pgd40.png")):
        save_figure(fig.accuracy_vs_eps(curves, attack, "stronger", seed_differences(
            curves, attack, " (last)")), out / name)
    cnnf = curves[~curves["label"].str.startswith("PC")]  # 5c: CNN-F-k only
    save_figure(fig.accuracy_vs_training_iterations(cnnf, target="stronger", differences=(
        seed_differences(cnnf, "pgd"))), out / "fig5c_training_iterations.png")
    sweep = results[results["sweep"] == "test_iterations"]
    if not sweep.empty:
        save_figure(fig.accuracy_vs_test_iterations(sweep), out / "fig5d_test_iterations.png")
    (out / "masking_report.txt").write_text(format_report(masking_report(main)) + "\n")
    attacked = curves[curves["attack"] != "clean"].assign(
        row=lambda d: d["label"] + " " + d["attack"].str.upper().str.replace("PGD", "PGD-40"))
    wide = mean_sd(*(attacked.pivot_table(index="row", columns="eps", values="accuracy",
                                          aggfunc=how) for how in ("mean", "std")))
    seeds = main.groupby("label")["model"].nunique()
    at_eps = main[(main["eps"] == TABLE_EPS) | (main["attack"] == "clean")]
    at_eps = at_eps.assign(column=[column_name(a, t, s) for a, t, s in
                                   zip(at_eps["attack"], at_eps["target"], at_eps["steps"],
                                       strict=True)])
    per_seed = at_eps.pivot_table(index=["label", "model"], columns="column", values="accuracy")
    # worst: the lowest attack column of each seed (the per-image worst case stays beside it)
    per_seed["worst"] = per_seed.drop(columns=["clean", PER_IMAGE]).min(axis=1)
    by_label = per_seed.groupby("label")
    table, table_sd = by_label.mean(), by_label.std()
    order = ["clean", "FGSM first", "FGSM e2e", "PGD-40 first", "PGD-40 e2e", "PGD-10 first",
             "APGD-CE-50 e2e", "transfer", PER_IMAGE, "worst"]
    table = table[[c for c in order if c in table] + [c for c in table if c not in order]]
    gains = paired_gains(curves[(curves["attack"] == "pgd") & (curves["eps"] > 0)])
    (out / "fig5_table.md").write_text(
        "Stronger of first/e2e per point (accuracy %, mean ± s.d. over seeds; seeds: "
        + ", ".join(f"{label} {n}" for label, n in seeds.items()) + "):\n\n"
        + markdown(wide)
        + "\n\nPGD-40, each model minus the CNN twin of its seed (pp, mean ± s.d. over the "
        "seeds both have; runs named NAME-s<seed>, as reproduce_fig5.sh names them):\n\n"
        + markdown(gains)
        + f"\n\nEvery attack at eps = {TABLE_EPS} (attack, target, steps; mean ± s.d. over "
        "seeds; worst: the strongest attack of each seed):\n\n"
        + markdown(mean_sd(table, table_sd)) + "\n")


def seed_gains(points: pd.DataFrame) -> pd.Series:
    """Per label, eps and seed: accuracy minus the CNN's of the same seed (a fraction).

    ``points``: rows of one attack (model, label, eps, accuracy); a run's seed is read from its
    name's ``-s<seed>`` suffix. Labels with no CNN of a shared seed are left out."""
    seeded = points.assign(seed=points["model"].str.extract(r"-s(\d+)$", expand=False))
    wide = seeded.dropna(subset=["seed"]).pivot_table(index=["eps", "seed"], columns="label",
                                                      values="accuracy")
    return wide.drop(columns="CNN").sub(wide["CNN"], axis=0).stack().rename("gain")


def paired_gains(points: pd.DataFrame) -> pd.DataFrame:
    """Per label and eps, :func:`seed_gains` as 'mean ± s.d.' in pp."""
    by = seed_gains(points).groupby(["label", "eps"])
    return mean_sd(by.mean().unstack("eps"), by.std().unstack("eps")).rename_axis(None)


def seed_differences(curves: pd.DataFrame, attack: str, suffix: str = "") -> pd.DataFrame:
    """The difference panel of Fig. 5a-c: per label ('<label><suffix>', the figure's series
    name) and eps (clean as 0), the mean over seeds of each model minus the CNN twin of its
    seed, with the t interval over seeds (pp)."""
    rows = curves[curves["attack"].isin([attack, "clean"])]
    gains = seed_gains(rows.assign(eps=rows["eps"].where(rows["attack"] != "clean", 0.0)))
    table = gains.reset_index().assign(difference_pp=lambda d: 100 * d["gain"], scoring="last",
                                       attack=attack, target="stronger", steps=0)
    parts = [over_models(group).assign(series=f"{label}{suffix}")
             for label, group in table.groupby("label")]
    summary = pd.concat(parts, ignore_index=True)
    return summary.assign(difference_pp=summary["mean_pp"], interval=SEED_T_CI)[
        fig.DIFFERENCE_COLUMNS]


def column_name(attack: str, target: str, steps: int) -> str:
    """A table column for one attack, e.g. 'PGD-40 first', 'APGD-CE-50 e2e', 'transfer'."""
    if attack == "clean":
        return "clean"
    if attack == WORST_CASE:
        return PER_IMAGE
    if attack == "transfer":
        return "transfer"
    return f"{attack.upper()}{f'-{steps}' if steps else ''} {target}"


def mean_sd(mean: pd.DataFrame, sd: pd.DataFrame) -> pd.DataFrame:
    """Accuracies (fractions) as 'mean ± s.d.' in percent ('mean' alone for one seed, empty
    where nothing was measured)."""
    def cell(m: float, s: float) -> str:
        if pd.isna(m):
            return ""
        return f"{100 * m:.1f}" if pd.isna(s) else f"{100 * m:.1f} ± {100 * s:.1f}"
    sd = sd.reindex(index=mean.index, columns=mean.columns)  # one seed: no s.d. rows
    return pd.DataFrame({c: [cell(m, s) for m, s in zip(mean[c], sd[c], strict=True)]
                         for c in mean.columns}, index=mean.index)


def robustness_summary(csv: Path, model: str | None = None,
                       evaluation: str = "analyses/reproduce_fig5.py") -> dict[str, object]:
    """The card's robustness fields (accuracy, fractions) from an evaluation CSV: this
    script's, one run per file, or ``neurocnnf evaluate``'s results.csv with ``model`` naming
    the rows of the run (e.g. 'table2-cnnf/best'). Each field is the lowest over scorings."""
    rows = pd.read_csv(csv)
    if model is not None:
        models = set(rows["model"])
        if model not in models:
            raise SystemExit(f"{csv} has no rows of model {model!r}: {sorted(models)}")
        rows = rows[rows["model"] == model]
    rows = rows[rows["sweep"].isna() & ~((rows["attack"] == "transfer")
                                         & (rows["trained_iterations"] == 0))]
    at = rows[(rows["eps"] == TABLE_EPS) & (rows["attack"] != WORST_CASE)]
    pgd40 = at[(at["attack"] == "pgd") & (at["steps"] == STEPS)]
    attacks = at[at["attack"] != "clean"].drop_duplicates(["attack", "target", "steps"])
    return {"n_images": int(rows["n"].max()), "eps": TABLE_EPS,
            "pgd40_eps0.1_first": float(pgd40[pgd40["target"] == "first"]["accuracy"].min()),
            "pgd40_eps0.1_e2e": float(pgd40[pgd40["target"] == "e2e"]["accuracy"].min()),
            "pgd40_eps0.1_worst": float(pgd40["accuracy"].min()),
            "worst_attack_eps0.1": float(at["accuracy"].min()),
            "attacks": ", ".join(sorted(column_name(a.attack, a.target, a.steps)
                                        for a in attacks.itertuples())),
            "evaluation": evaluation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["evaluate", "figures", "register"])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=Path("results/fig5"))
    parser.add_argument("--n", type=int, default=300, help="first N test images")
    parser.add_argument("--twin", type=Path, help="plain-CNN run for the transfer attack")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best",
                        help="evaluate: which checkpoint of each run (last: matched epochs)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    parser.add_argument("--name", help="register: the pretrained name")
    parser.add_argument("--description", default="", help="register: one line")
    parser.add_argument("--hardware", default="", help="register: where it was trained")
    parser.add_argument("--commit", default="", help="register: the training code's commit")
    parser.add_argument("--results", type=Path,
                        help="register: the evaluation CSV (default: OUT/<run name>.csv)")
    parser.add_argument("--model", help="register: the CSV's rows of this model (default: all)")
    parser.add_argument("--evaluation", default="analyses/reproduce_fig5.py",
                        help="register: what made the CSV, for the card")
    args = parser.parse_args()
    if args.step == "evaluate":
        for run in args.runs:
            device = str(resolve_device(args.device))
            print(evaluate_run(run, args.out, args.n, args.twin, device, args.checkpoint),
                  flush=True)
    elif args.step == "register":
        from neurocnnf.pretrained.cards import register

        (run,) = args.runs
        results = args.results or args.out / f"{run.name}.csv"
        print(register(run, args.name, args.description, args.hardware, args.commit,
                       robustness_summary(results, args.model, args.evaluation)))
    else:
        figures(args.out)


if __name__ == "__main__":
    main()
