"""Figures of the predictive-coding comparison, from the tables of
:func:`neurocnnf.analysis.predictive_coding.compare`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from neurocnnf.analysis.predictive_coding import LAYER_K


def _recurrent(table: pd.DataFrame) -> pd.Series:
    """Rows of models that iterate (a feedforward model has iteration 0 only)."""
    return table.groupby("model")["iteration"].transform("max") > 0


def _baseline(ax: plt.Axes, rows: pd.DataFrame, label: str) -> None:
    """Feedforward models (t = 0 only) as dashed horizontal lines."""
    for model, part in rows[~_recurrent(rows)].groupby("model"):
        ax.axhline(float(part["value"].iloc[0]), ls="--", color="grey", lw=1,
                   label=f"{model} ({label})")


def comparison_panels(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """(a) relative prediction error at layer k, (b) representational change at layer k,
    (c) noisy-vs-clean correlation distance at layer k (largest noise), (d) accuracy per
    iteration over the noise grid; feedback intact."""
    def intact(name: str) -> pd.DataFrame:
        table = tables[name]
        return table[table["feedback"] == "intact"]

    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    errors = intact("prediction_error")
    errors = errors[(errors["noise"] == 0) & (errors["layer"] == LAYER_K)]
    sns.lineplot(data=errors, x="iteration", y="relative", hue="model", marker="o", ax=axes[0])
    axes[0].set(title="prediction error at layer k (clean)", ylabel="RMS error / error at t=0")
    change = intact("change")
    change = change[(change["noise"] == 0) & (change["layer"] == LAYER_K)
                    & (change["iteration"] > 0)]
    sns.lineplot(data=change, x="iteration", y="value", hue="model", marker="o", ax=axes[1])
    axes[1].set(title="representational change at layer k", ylabel="||f_t - f_t-1|| / ||f_0||")
    distance = intact("noise_distance")
    sigma = distance["noise"].max()
    distance = distance[(distance["noise"] == sigma) & (distance["layer"] == LAYER_K)]
    sns.lineplot(data=distance, x="iteration", y="value", hue="model", marker="o", ax=axes[2])
    _baseline(axes[2], distance, "t=0")
    axes[2].set(title=f"noisy vs clean, layer k (sigma {sigma:g})",
                ylabel="1 - Pearson r")
    accuracy = intact("accuracy")
    recurrent = _recurrent(accuracy)
    sns.lineplot(data=accuracy[recurrent], x="iteration", y="value", hue="noise", style="model",
                 marker="o", palette="viridis", ax=axes[3])
    for (model, sigma), part in accuracy[~recurrent].groupby(["model", "noise"]):
        axes[3].axhline(float(part["value"].iloc[0]), ls=":", color="grey", lw=1)
        axes[3].annotate(f"{model} {sigma:g}", (0, float(part["value"].iloc[0])), fontsize=7,
                         color="grey")
    axes[3].set(title="accuracy per iteration (dotted: plain CNN)", ylabel="accuracy")
    axes[3].legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    return fig


def ablation_accuracy(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Accuracy per iteration with feedback intact, zeroed or shuffled; one panel per noise."""
    accuracy = tables["accuracy"]
    grid = sns.relplot(data=accuracy[_recurrent(accuracy)], x="iteration", y="value",
                       hue="model", style="feedback", col="noise", kind="line", marker="o",
                       height=3.2, aspect=1.0)
    grid.set_axis_labels("iteration", "accuracy")
    grid.figure.suptitle("feedback ablations", y=1.03)
    return grid.figure
