"""Figures of the analyses (seaborn), from their tidy tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def similarity_vs_iteration(table: pd.DataFrame, ceiling: tuple[float, float] | None = None
                            ) -> plt.Figure:
    """RSA similarity per layer against iteration, one panel per brain RDM, with CIs."""
    targets = list(dict.fromkeys(table["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(4.5 * len(targets), 3.6), sharey=True)
    for ax, target in zip(np.atleast_1d(axes), targets, strict=True):
        part = table[table["target"] == target]
        sns.lineplot(data=part, x="iteration", y="similarity", hue="layer", marker="o", ax=ax)
        for _, rows in part.groupby("layer"):
            ax.fill_between(rows["iteration"], rows["ci_low"], rows["ci_high"], alpha=0.15)
        if ceiling is not None and target == "human_IT":
            ax.axhspan(*ceiling, color="grey", alpha=0.2, label="noise ceiling")
        ax.set(title=target, ylabel=f"RDM similarity ({part['method'].iloc[0]})")
    fig.tight_layout()
    return fig


def cka_matrix(matrix: np.ndarray, layer: str) -> plt.Figure:
    """Iteration x iteration CKA heatmap."""
    fig, ax = plt.subplots(figsize=(4, 3.4))
    sns.heatmap(matrix, vmin=0, vmax=1, annot=len(matrix) <= 6, fmt=".2f", cmap="viridis",
                square=True, ax=ax)
    ax.set(title=f"CKA across iterations: {layer}", xlabel="iteration", ylabel="iteration")
    fig.tight_layout()
    return fig


def rdm_panels(rdms: dict[str, np.ndarray]) -> plt.Figure:
    """Side-by-side RDMs (rank-transformed for display)."""
    from scipy.stats import rankdata

    fig, axes = plt.subplots(1, len(rdms), figsize=(3.2 * len(rdms), 3.2))
    for ax, (name, matrix) in zip(np.atleast_1d(axes), rdms.items(), strict=True):
        ranks = rankdata(matrix).reshape(matrix.shape)
        ax.imshow(ranks, cmap="viridis")
        ax.set(title=name, xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def settling_vs_difficulty(table: pd.DataFrame, accuracy: pd.DataFrame) -> plt.Figure:
    """Mean settling iteration per perturbation level (``table``: one row per stimulus with
    level and settling_iteration) and accuracy at the first and last iteration per level
    (``accuracy``: :func:`neurocnnf.analysis.difficulty.accuracy_gain_by_level`)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    sns.pointplot(data=table, x="level", y="settling_iteration", errorbar=("ci", 95),
                  ax=axes[0])
    axes[0].set(title="iterations to self-consistency", xlabel="noise sigma")
    long = accuracy[["level", "first", "last"]].melt("level", var_name="iteration",
                                                     value_name="accuracy")
    sns.barplot(data=long, x="level", y="accuracy", hue="iteration", ax=axes[1])
    axes[1].set(title="accuracy: first vs last iteration", xlabel="noise sigma", ylim=(0, 1))
    fig.tight_layout()
    return fig
