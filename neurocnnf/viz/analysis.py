"""Figures of the analyses (seaborn), from their tidy tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from neurocnnf.viz import style


def cka_matrices(table: pd.DataFrame, title: str) -> plt.Figure:
    """Iteration x iteration CKA heatmaps, one panel per layer, from the tidy table of
    :func:`neurocnnf.analysis.cka.iteration_cka_table` (one model's rows; 0 = unrelated, 1 =
    the same up to rotation and scale)."""
    layers = list(dict.fromkeys(table["layer"]))
    fig, axes = style.figure(len(layers), panel=(3.6, 3.2))
    for i, (ax, layer) in enumerate(zip(axes, layers, strict=True)):
        matrix = table[table["layer"] == layer].pivot(index="iteration_a",
                                                      columns="iteration_b", values="cka")
        sns.heatmap(matrix, vmin=0, vmax=1, annot=len(matrix) <= 6, fmt=".2f", cmap="viridis",
                    square=True, ax=ax, cbar=i == len(layers) - 1,
                    cbar_kws={"label": "debiased linear CKA"})
        ax.set(title=layer, xlabel="iteration t", ylabel="iteration t" if i == 0 else "")
    fig.suptitle(f"CKA across iterations: {title}")
    return fig


def _category_ticks(ax: plt.Axes, categories: list[str], rows: bool = True) -> None:
    """Category names at the middle of each run of one category (on the y axis too if
    ``rows``), lines between runs."""
    names = np.asarray(categories)
    starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
    ends = np.r_[starts[1:], len(names)]
    middles = (starts + ends - 1) / 2
    ax.set_xticks(middles, names[starts], rotation=90)
    ax.set_yticks(middles, names[starts] if rows else [])
    ax.tick_params(length=0)
    for boundary in starts[1:] - 0.5:
        ax.axhline(boundary, color="white", lw=0.6)
        ax.axvline(boundary, color="white", lw=0.6)


def rdm_panels(rdms: dict[str, np.ndarray], categories: list[str] | None = None
               ) -> plt.Figure:
    """Side-by-side RDMs, each as the percentile of its dissimilarities (rank-transformed, so
    that RDMs on different scales share one colour bar), with category ticks when
    ``categories`` (one name per stimulus, in the RDMs' order) is given."""
    from scipy.stats import rankdata

    fig, axes = style.figure(len(rdms), panel=(3.0, 3.9))
    for i, (ax, (name, matrix)) in enumerate(zip(axes, rdms.items(), strict=True)):
        percentiles = 100 * (rankdata(matrix).reshape(matrix.shape) - 1) / (matrix.size - 1)
        image = ax.imshow(percentiles, cmap="viridis", vmin=0, vmax=100,
                          interpolation="nearest")
        ax.set_title(name)
        if categories is not None:
            _category_ticks(ax, categories, rows=i == 0)
        else:
            ax.set(xticks=[], yticks=[], xlabel="stimulus", ylabel="stimulus")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="dissimilarity (percentile)")
    return fig


def settling_vs_difficulty(table: pd.DataFrame, accuracy: pd.DataFrame,
                           level_name: str = "perturbation level") -> plt.Figure:
    """Mean settling iteration per perturbation level (``table``: one row per stimulus with
    level and settling_iteration) and accuracy at the first and last iteration per level
    (``accuracy``: :func:`neurocnnf.analysis.difficulty.accuracy_gain_by_level`);
    ``level_name``: the level's meaning and unit, the x label."""
    fig, axes = style.figure(2)
    sns.barplot(data=table, x="level", y="settling_iteration", errorbar=("ci", 95),
                color=style.KIND_COLOURS["CNN-F"], ax=axes[0])
    axes[0].set(title=f"iterations to self-consistency\n(error bars: {style.BOOTSTRAP_CI})",
                xlabel=level_name, ylabel="settling iteration (mean over images)")
    style.from_zero(axes[0])
    long = accuracy[["level", "first", "last"]].melt("level", var_name="iteration",
                                                     value_name="accuracy")
    long = long.assign(accuracy=100 * long["accuracy"],
                       iteration=long["iteration"].map({"first": "first (t = 0)",
                                                        "last": "last"}))
    sns.barplot(data=long, x="level", y="accuracy", hue="iteration", ax=axes[1])
    axes[1].set(title="accuracy: first vs last iteration", xlabel=level_name,
                ylabel="accuracy (%)", ylim=(0, 100))
    style.legend_outside(axes[1], title="scored at")
    return fig
