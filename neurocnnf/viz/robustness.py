"""Robustness figures in the shape of the paper's Fig. 5, from evaluation results.

Every function takes the tidy table of ``neurocnnf.attacks.evaluate`` and returns a matplotlib
Figure; several checkpoints with one label give mean +- sd error bars (seeds). Fig. 5a-c put
each CNN-F minus its CNN twin, with its interval, in a panel of its own.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from neurocnnf.viz import style

ACCURACY = "accuracy (%)"
EPS = "eps (L-inf radius, pixel scale 0-1)"
# what an attack aims at, as a title says it
TARGETS = {"first": "on the plain first pass", "e2e": "through all iterations",
           "stronger": "(stronger of first pass and end to end)"}
DIFFERENCE_COLUMNS = ["series", "eps", "difference_pp", "low_pp", "high_pp", "interval"]


def _series(results: pd.DataFrame) -> pd.DataFrame:
    """Adds 'series': CNN for plain models, else '<label> (<scoring>)'."""
    out = results.copy()
    out["series"] = [
        "CNN" if t == 0 else f"{label} ({scoring})"
        for t, label, scoring in zip(out["trained_iterations"], out["label"], out["scoring"],
                                     strict=True)
    ]
    return out


def _with_clean(results: pd.DataFrame, attack: str) -> pd.DataFrame:
    """Rows of ``attack`` plus the clean rows as eps = 0."""
    clean = results[results["attack"] == "clean"].assign(eps=0.0)
    return pd.concat([clean, results[results["attack"] == attack]])


def _attack_rows(results: pd.DataFrame, attack: str, target: str = "first",
                 scoring: str | None = None) -> pd.DataFrame:
    """Clean rows (as eps 0) and ``attack`` rows aimed at ``target`` (optionally one scoring),
    PGD at its largest number of steps only."""
    data = _with_clean(results, attack)
    data = data[(data["target"] == target) | (data["attack"] == "clean")]
    if attack == "pgd" and (data["attack"] == "pgd").any():
        deepest = data[data["attack"] == "pgd"]["steps"].max()
        data = data[(data["attack"] == "clean") | (data["steps"] == deepest)]
    return data if scoring is None else data[data["scoring"] == scoring]


def _seeds(data: pd.DataFrame, keys: list[str]) -> tuple[str | None, str]:
    """seaborn's errorbar and the title's note for curves whose points (``keys``) may have
    several models (seeds): the s.d. over them, else none."""
    if data.groupby(keys)["model"].nunique().max() > 1:
        return "sd", f"\nerror bars: {style.SEED_SD}"
    return None, ""


def twin_differences(results: pd.DataFrame, attack: str, target: str = "first",
                     scoring: str | None = None, by: str = "series") -> pd.DataFrame:
    """Each CNN-F minus its CNN twin on the same images at every eps of ``attack`` aimed at
    ``target`` (clean as eps 0), from per-image correctness: :data:`DIFFERENCE_COLUMNS`, in
    percentage points. Newcombe's interval where a series has one model, the t interval over
    its models (seeds, each against its own twin) where it has several. Empty where the
    table has no per-image correctness or no twins (``neurocnnf evaluate`` without
    ``--twin``). ``by``: the series are named '<label> (<scoring>)' ('series', as in Fig.
    5a/b) or 'CNN-F-<trained iterations>' ('trained', as in Fig. 5c)."""
    from neurocnnf.attacks.paired import SETTING, over_models, paired_table

    if "correct" not in results or "twin" not in results:
        return pd.DataFrame(columns=DIFFERENCE_COLUMNS)
    grid = sorted(set(results.loc[results["attack"] == attack, "eps"]))
    pairs = pd.concat([paired_table(results, eps) for eps in grid] or [pd.DataFrame()])
    if pairs.empty:
        return pd.DataFrame(columns=DIFFERENCE_COLUMNS)
    steps = _attack_rows(results, attack, target)["steps"]
    pairs = pairs[(pairs["attack"] == "clean") | ((pairs["attack"] == attack)
                                                  & (pairs["target"] == target)
                                                  & pairs["steps"].isin(steps))]
    pairs = pairs.drop_duplicates(["model", *SETTING])
    if scoring is not None:
        pairs = pairs[pairs["scoring"] == scoring]
    models = results.drop_duplicates("model").set_index("model")
    series = ([f"CNN-F-{models.at[m, 'trained_iterations']}" for m in pairs["model"]]
              if by == "trained" else
              [f"{models.at[m, 'label']} ({s})" for m, s in
               zip(pairs["model"], pairs["scoring"], strict=True)])
    pairs = pairs.assign(series=series, eps=pairs["eps"].where(pairs["attack"] != "clean", 0.0))
    rows = []
    for series, group in pairs.groupby("series", sort=False):
        if group["model"].nunique() > 1:
            summary = over_models(group.assign(attack="any", target="any", steps=0))
            rows.append(summary.assign(series=series, difference_pp=summary["mean_pp"],
                                       interval=style.SEED_T_CI))
        else:
            rows.append(group.assign(interval=style.NEWCOMBE_CI))
    return pd.concat(rows)[DIFFERENCE_COLUMNS].sort_values(["series", "eps"])


def _difference_panel(ax: plt.Axes, differences: pd.DataFrame, palette: dict) -> None:
    """Each series' difference from the twin against eps, with its interval (series moved
    apart a little along eps so that their bars do not hide each other)."""
    markers = style.model_markers(differences["series"])
    groups = list(differences.groupby("series", sort=False))
    step = 0.015 * (differences["eps"].max() - differences["eps"].min())
    for i, (series, rows) in enumerate(groups):
        ax.errorbar(rows["eps"] + style.dodge(i, len(groups), step), rows["difference_pp"],
                    yerr=[rows["difference_pp"] - rows["low_pp"],
                          rows["high_pp"] - rows["difference_pp"]],
                    marker=markers[series], capsize=3, color=palette.get(series),
                    label=series)
    style.zero_line(ax)
    intervals = " / ".join(dict.fromkeys(differences["interval"]))
    ax.set(xlabel=EPS, ylabel="accuracy minus the CNN twin's (pp)",
           title=f"difference from the twin\n(error bars: {intervals})")
    style.legend_outside(ax)


def _curves(data: pd.DataFrame, hue: str, title: str, differences: pd.DataFrame
            ) -> plt.Figure:
    """Accuracy (%) against eps per ``hue`` value, and beside it the difference panel when
    ``differences`` has rows."""
    fig, axes = style.figure(2 if len(differences) else 1)
    data = data.assign(accuracy=100 * data["accuracy"])
    names = style.by_kind(data.sort_values("trained_iterations")[hue])
    palette = style.model_palette([*names, *differences["series"]])
    errorbar, note = _seeds(data, [hue, "eps"])
    sns.lineplot(data=data, x="eps", y="accuracy", hue=hue, hue_order=names, style=hue,
                 style_order=names, markers=style.model_markers(names), dashes=False,
                 palette=palette, errorbar=errorbar, err_style="bars", ax=axes[0])
    axes[0].set(title=title + note, xlabel=EPS, ylabel=ACCURACY, ylim=(0, 100))
    style.legend_outside(axes[0], title="model")
    if len(differences):
        _difference_panel(axes[1], differences, palette)
    return fig


def accuracy_vs_eps(results: pd.DataFrame, attack: str = "pgd", target: str = "first",
                    differences: pd.DataFrame | None = None) -> plt.Figure:
    """Fig. 5a (FGSM) / 5b (PGD): accuracy against eps, CNN vs CNN-F, and each CNN-F minus
    its twin with its interval (``differences``, default :func:`twin_differences`; a
    :data:`DIFFERENCE_COLUMNS` table)."""
    data = _attack_rows(_series(results), attack, target)
    if differences is None:
        differences = twin_differences(results, attack, target)
    name = attack.upper() + (f"-{int(data['steps'].max())}" if attack == "pgd" else "")
    return _curves(data, "series", f"{name} {TARGETS.get(target, target)}", differences)


def accuracy_vs_training_iterations(results: pd.DataFrame, attack: str = "pgd",
                                    target: str = "first",
                                    differences: pd.DataFrame | None = None) -> plt.Figure:
    """Fig. 5c: accuracy against eps for models trained with different numbers of
    iterations (scored on the last logits), and each CNN-F-k minus its twin."""
    data = _attack_rows(results, attack, target, "last").assign(
        trained=lambda d: d["trained_iterations"].map(lambda t: "CNN" if t == 0 else f"CNN-F-{t}"))
    if differences is None:
        differences = twin_differences(results, attack, target, "last", by="trained")
    return _curves(data, "trained", f"{attack.upper()} {TARGETS.get(target, target)},\n"
                   "models trained with T iterations", differences)


def accuracy_vs_test_iterations(results: pd.DataFrame, attack: str = "pgd") -> plt.Figure:
    """Fig. 5d: accuracy against the number of test iterations, one line per eps."""
    data = _attack_rows(results, attack, "first", "last")
    data = data.assign(accuracy=100 * data["accuracy"])
    fig, (ax,) = style.figure()
    errorbar, note = _seeds(data, ["eps", "iterations"])
    sns.lineplot(data=data, x="iterations", y="accuracy", hue="eps", marker="o",
                 errorbar=errorbar, err_style="bars", palette="viridis", ax=ax)
    ax.set(title=f"{attack.upper()} on the plain first pass, scored after t iterations{note}",
           xlabel="test iterations t", ylabel=ACCURACY, ylim=(0, 100))
    style.whole_numbers(ax)
    style.legend_outside(ax, title="eps (pixel scale)")
    return fig
