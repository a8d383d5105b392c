"""Figures of the predictive-coding comparison, from the tables of
:func:`neurocnnf.analysis.predictive_coding.compare`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from neurocnnf.analysis.predictive_coding import LAYER_K
from neurocnnf.viz import style


def _recurrent(table: pd.DataFrame) -> pd.Series:
    """Rows of models that iterate (a feedforward model has iteration 0 only)."""
    return table.groupby("model")["iteration"].transform("max") > 0


def _baseline(ax: plt.Axes, rows: pd.DataFrame, label: str, palette: dict) -> None:
    """Feedforward models (t = 0 only) as dashed horizontal lines."""
    for model, part in rows[~_recurrent(rows)].groupby("model"):
        ax.axhline(float(part["value"].iloc[0]), ls="--", lw=1, color=palette[model],
                   label=f"{model} ({label})")


def _models(ax: plt.Axes, data: pd.DataFrame, y: str, palette: dict) -> None:
    """One line per model (its kind's colour and marker) against iteration."""
    names = style.by_kind(data["model"])
    sns.lineplot(data=data, x="iteration", y=y, hue="model", style="model", hue_order=names,
                 style_order=names, palette=palette, markers=style.model_markers(names),
                 dashes=False, errorbar=None, ax=ax)


def comparison_panels(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """(a) relative prediction error at layer k, (b) representational change at layer k,
    (c) noisy-vs-clean correlation distance at layer k (largest noise), (d) accuracy per
    iteration over the noise grid; feedback intact. Means over the images."""
    def intact(name: str) -> pd.DataFrame:
        table = tables[name]
        return table[table["feedback"] == "intact"]

    fig, axes = style.figure(2, 2)
    palette = style.model_palette(style.by_kind(tables["accuracy"]["model"]))
    errors = intact("prediction_error")
    errors = errors[(errors["noise"] == 0) & (errors["layer"] == LAYER_K)]
    _models(axes[0], errors, "relative", palette)
    axes[0].set(title="(a) prediction error at layer k, clean images", xlabel="iteration t",
                ylabel="RMS prediction error / its value at t = 0")
    change = intact("change")
    change = change[(change["noise"] == 0) & (change["layer"] == LAYER_K)
                    & (change["iteration"] > 0)]
    _models(axes[1], change, "value", palette)
    axes[1].set(title="(b) representational change at layer k", xlabel="iteration t",
                ylabel="||f_t - f_(t-1)|| / ||f_0||")
    distance = intact("noise_distance")
    sigma = distance["noise"].max()
    distance = distance[(distance["noise"] == sigma) & (distance["layer"] == LAYER_K)]
    _models(axes[2], distance[_recurrent(distance)], "value", palette)
    _baseline(axes[2], distance, "t = 0", palette)
    axes[2].set(title=f"(c) noisy vs clean at layer k (noise sd {sigma:g})",
                xlabel="iteration t", ylabel="correlation distance (1 - Pearson r)")
    accuracy = intact("accuracy").assign(value=lambda d: 100 * d["value"])
    recurrent = _recurrent(accuracy)
    sns.lineplot(data=accuracy[recurrent], x="iteration", y="value", hue="noise", style="model",
                 marker="o", palette="viridis", errorbar=None, ax=axes[3])
    for (model, sigma), part in accuracy[~recurrent].groupby(["model", "noise"]):
        axes[3].axhline(float(part["value"].iloc[0]), ls=":", color="grey", lw=1)
        axes[3].annotate(f"{model} {sigma:g}", (0, float(part["value"].iloc[0])), fontsize=7,
                         color="grey")
    axes[3].set(title="(d) accuracy per iteration (dotted: feedforward CNN)",
                xlabel="iteration t", ylabel="accuracy (%)")
    for ax in axes:
        style.whole_numbers(ax)
        style.legend_outside(ax)
    return fig


def ablation_accuracy(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Accuracy per iteration with feedback intact, zeroed or shuffled; one panel per noise."""
    accuracy = tables["accuracy"]
    accuracy = accuracy[_recurrent(accuracy)].assign(value=lambda d: 100 * d["value"])
    names = style.by_kind(accuracy["model"])
    style.apply()
    grid = sns.relplot(data=accuracy, x="iteration", y="value", hue="model", hue_order=names,
                       palette=style.model_palette(names), style="feedback", col="noise",
                       kind="line", marker="o", height=3.2, aspect=1.0, errorbar=None)
    grid.set_axis_labels("iteration t", "accuracy (%)")
    grid.set_titles("noise sd {col_name}")
    grid.figure.suptitle("feedback ablations: intact, zeroed, shuffled across images", y=1.03)
    return grid.figure
