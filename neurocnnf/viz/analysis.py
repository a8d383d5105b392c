"""Figures of the analyses (seaborn), from their tidy tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from neurocnnf.viz import style


def similarity_vs_iteration(table: pd.DataFrame, ceiling: tuple[float, float] | None = None
                            ) -> plt.Figure:
    """RSA similarity per layer against iteration, one panel per brain RDM, with the
    bootstrap CIs over images (``ci_low``/``ci_high``) and the human noise ceiling."""
    targets = list(dict.fromkeys(table["target"]))
    fig, axes = style.figure(len(targets), sharey=True)
    layers = list(dict.fromkeys(table["layer"]))
    palette = dict(zip(layers, sns.color_palette("colorblind", len(layers)), strict=True))
    for ax, target in zip(axes, targets, strict=True):
        part = table[table["target"] == target]
        for layer, rows in part.groupby("layer", sort=False):
            ax.plot(rows["iteration"], rows["similarity"], marker="o", color=palette[layer],
                    label=layer)
            ax.fill_between(rows["iteration"], rows["ci_low"], rows["ci_high"], alpha=0.15,
                            color=palette[layer])
        if ceiling is not None and target == "human_IT":
            ax.axhspan(*ceiling, color="grey", alpha=0.2, label="noise ceiling")
        ax.set(title=f"{target.replace('_', ' ')}\nbands: {style.BOOTSTRAP_CI} over images",
               xlabel="iteration t",
               ylabel=f"RDM similarity ({part['method'].iloc[0]} correlation)")
        style.whole_numbers(ax)
    style.legend_outside(axes[-1], title="layer")
    return fig


def cka_matrix(matrix: np.ndarray, layer: str) -> plt.Figure:
    """Iteration x iteration CKA heatmap (0 = unrelated, 1 = the same up to rotation and
    scale)."""
    fig, (ax,) = style.figure(panel=(4.4, 3.6))
    sns.heatmap(matrix, vmin=0, vmax=1, annot=len(matrix) <= 6, fmt=".2f", cmap="viridis",
                square=True, ax=ax, cbar_kws={"label": "debiased linear CKA"})
    ax.set(title=f"CKA across iterations: {layer}", xlabel="iteration t", ylabel="iteration t")
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
