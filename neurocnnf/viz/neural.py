"""Figures of the model-to-brain analysis (seaborn), from its tidy tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def _error_bars(line) -> np.ndarray:
    """(2, n) lengths below and above each point; a percentile bootstrap interval can miss
    its own estimate (few draws), so a side beyond the point is drawn as 0."""
    return np.clip(np.vstack([line["similarity"] - line["ci_low"],
                              line["ci_high"] - line["similarity"]]), 0, None)


def _ceiling(ax, rows: pd.DataFrame) -> None:
    low, high = rows["ceiling_low"].iloc[0], rows["ceiling_high"].iloc[0]
    if np.isfinite(low):
        ax.axhspan(low, high, color="grey", alpha=0.25, label="noise ceiling")


def similarity_vs_iteration(table: pd.DataFrame, subjects: pd.DataFrame,
                            chosen: dict[str, dict[str, dict]], focus: str | None = None
                            ) -> plt.Figure:
    """One panel per region: each model's committed layer (forward) against iteration with
    its bootstrap interval, the noise-ceiling band and, for ``focus`` (default: the first
    model), one grey point per subject.

    chosen: committed region ('EVC' / 'IT') -> model -> {layer, iteration}; regions other than
    EVC use the IT commitment."""
    regions = list(dict.fromkeys(table["region"]))
    fig, axes = plt.subplots(1, len(regions), figsize=(4.6 * len(regions), 3.8), squeeze=False)
    for ax, region in zip(axes[0], regions, strict=True):
        rows = table[table["region"] == region]
        picks = chosen["EVC" if region == "EVC" else "IT"]
        shown = focus or next(iter(picks))
        for model, c in picks.items():
            line = rows[(rows["model"] == model) & (rows["layer"] == c["layer"])
                        & (rows["kind"] == "forward")].sort_values("iteration")
            if line.empty:
                continue
            err = _error_bars(line)
            ax.errorbar(line["iteration"], line["similarity"], yerr=err, marker="o",
                        capsize=3, label=f"{model} {c['layer']}")
            if model != shown:  # one point per subject for the focus model only
                continue
            points = subjects[(subjects["region"] == region) & (subjects["model"] == model)
                              & (subjects["layer"] == c["layer"])
                              & (subjects["kind"] == "forward")]
            sns.stripplot(data=points, x="iteration", y="similarity", native_scale=True,
                          color="0.5", size=2.5, alpha=0.6, jitter=0.12, ax=ax)
        _ceiling(ax, rows)
        ax.axhline(0, color="black", lw=0.5)
        ax.set(title=f"{rows['dataset'].iloc[0]} {region}", xlabel="iteration",
               ylabel=f"RDM similarity ({rows['method'].iloc[0]})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def model_comparison(labels: list[str], difference: np.ndarray, p: np.ndarray,
                     significant: np.ndarray, title: str) -> plt.Figure:
    """Heatmap of row - column similarity differences; '*' where FDR-significant."""
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.0 * len(labels) + 1.5))
    marks = np.where(significant, "*", "")
    text = np.array([[f"{d:+.3f}{m}" if np.isfinite(q) else "" for d, q, m in
                      zip(drow, prow, mrow, strict=True)]
                     for drow, prow, mrow in zip(difference, p, marks, strict=True)])
    limit = max(np.nanmax(np.abs(difference)), 1e-6)
    sns.heatmap(difference, annot=text, fmt="", cmap="RdBu_r", vmin=-limit, vmax=limit,
                xticklabels=labels, yticklabels=labels, ax=ax,
                cbar_kws={"label": "similarity difference (row - column)"})
    ax.set(title=title)
    fig.tight_layout()
    return fig


def layer_hierarchy(table: pd.DataFrame, iterations: dict[str, int]) -> plt.Figure:
    """Similarity against relative layer depth (forward features at each model's committed
    iteration; layer i of a model's n at i / n), one panel per region, with bootstrap
    intervals and the noise-ceiling band."""
    regions = list(dict.fromkeys(table["region"]))
    fig, axes = plt.subplots(1, len(regions), figsize=(4.6 * len(regions), 3.8), squeeze=False,
                             sharey=True)
    for ax, region in zip(axes[0], regions, strict=True):
        rows = table[(table["region"] == region) & (table["kind"] == "forward")]
        for model, t in iterations.items():
            line = rows[(rows["model"] == model) & (rows["iteration"] == t)].sort_values(
                "depth")
            if line.empty:
                continue
            # models differ in depth: place layer i of n at i / n
            position = np.arange(1, len(line) + 1) / len(line)
            err = _error_bars(line)
            ax.errorbar(position, line["similarity"], yerr=err, marker="o", capsize=3,
                        label=f"{model} t={t} ({line['layer'].iloc[0]}..{line['layer'].iloc[-1]})")
        _ceiling(ax, table[table["region"] == region])
        ax.set(title=f"{rows['dataset'].iloc[0]} {region}",
               xlabel="layer position (layer i of n at i / n)", ylabel="RDM similarity")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
