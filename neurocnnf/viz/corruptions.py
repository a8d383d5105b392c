"""Figures of accuracy under common corruptions (``neurocnnf.pipelines.corruptions``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from neurocnnf.viz import style


def _with_clean(table: pd.DataFrame) -> pd.DataFrame:
    """Every corruption's rows plus the clean rows (severity 0) repeated under its name."""
    clean = table[table["corruption"] == "none"]
    names = [c for c in table["corruption"].unique() if c != "none"]
    return pd.concat([table[table["corruption"] != "none"]]
                     + [clean.assign(corruption=name) for name in names])


def accuracy_by_severity(table: pd.DataFrame, default_iterations: dict[str, int]
                         ) -> plt.Figure:
    """One panel per corruption: accuracy (%) against severity (0 = clean), a line per model
    at its own number of test iterations."""
    data = _with_clean(table)
    data = data[[t == default_iterations.get(m, t) for m, t in
                 zip(data["model"], data["iterations"], strict=True)]]
    data = data.assign(accuracy=100 * data["accuracy"])
    models = style.by_kind(data["model"])
    style.apply()
    grid = sns.relplot(data, x="severity", y="accuracy", hue="model", style="model",
                       hue_order=models, style_order=models, palette=style.model_palette(models),
                       markers=style.model_markers(models), col="corruption", kind="line",
                       dashes=False, height=2.8, aspect=0.9, facet_kws={"sharey": True},
                       errorbar=None)
    grid.set(ylim=(0, 100), xticks=range(6))
    grid.set_axis_labels("severity (CIFAR-10-C; 0 = clean)", "test accuracy (%)")
    grid.set_titles("{col_name}")
    sns.move_legend(grid, "upper left", bbox_to_anchor=(1.0, 0.9))
    return grid.figure


def accuracy_by_iteration(table: pd.DataFrame, default_iterations: dict[str, int]
                          ) -> plt.Figure:
    """Fig. 5d on natural images: for each model with feedback (own T > 0), accuracy (%)
    against the number of test iterations, a line per severity, one panel per model x
    corruption."""
    data = _with_clean(table)
    recurrent = [m for m, t in default_iterations.items() if t > 0]
    if not recurrent:
        raise ValueError("accuracy by test iterations needs a model with feedback (T > 0); "
                         f"every model here is plain: {sorted(default_iterations)}")
    data = data[data["model"].isin(recurrent)]
    data = data.assign(accuracy=100 * data["accuracy"])
    style.apply()
    grid = sns.relplot(data, x="iterations", y="accuracy", hue="severity", col="corruption",
                       row="model", kind="line", marker="o", palette="viridis", height=2.4,
                       aspect=1.0, facet_kws={"sharey": False}, errorbar=None)
    grid.set_axis_labels("test iterations t", "test accuracy (%)")
    grid.set_titles("{row_name} | {col_name}")
    sns.move_legend(grid, "upper left", bbox_to_anchor=(1.0, 0.9))
    return grid.figure
