"""Figures of the model-to-brain analysis (seaborn), from its tidy tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from neurocnnf.viz import style


def _error_bars(line) -> np.ndarray:
    """(2, n) lengths below and above each point; a percentile bootstrap interval can miss
    its own estimate (few draws), so a side beyond the point is drawn as 0."""
    return np.clip(np.vstack([line["similarity"] - line["ci_low"],
                              line["ci_high"] - line["similarity"]]), 0, None)


def _interval(rows: pd.DataFrame) -> str:
    """The interval of a region's rows: the dual bootstrap where it has several subjects
    (a standard error is known), else the bootstrap over stimuli (one RDM, macaque IT)."""
    several = "sem" in rows and rows["sem"].notna().any()
    return style.DUAL_BOOTSTRAP_CI if several else f"{style.BOOTSTRAP_CI} (stimuli)"


def _ceiling(ax, rows: pd.DataFrame) -> None:
    low, high = rows["ceiling_low"].iloc[0], rows["ceiling_high"].iloc[0]
    if np.isfinite(low):
        ax.axhspan(low, high, color="grey", alpha=0.25, label="noise ceiling")


def similarity_vs_iteration(table: pd.DataFrame, subjects: pd.DataFrame | None,
                            chosen: dict[str, dict[str, dict]], focus: str | None = None
                            ) -> plt.Figure:
    """One panel per region: each model's committed layer (forward) against iteration with
    its bootstrap interval, the noise-ceiling band and, for ``focus`` (default: the first
    model), one grey point per subject (none where ``subjects`` is None).

    chosen: committed region ('EVC' / 'IT') -> model -> {layer, iteration}; regions other than
    EVC use the IT commitment."""
    regions = list(dict.fromkeys(table["region"]))
    fig, axes = style.figure(len(regions))
    palette = style.model_palette(table["model"])
    for ax, region in zip(axes, regions, strict=True):
        rows = table[table["region"] == region]
        picks = chosen["EVC" if region == "EVC" else "IT"]
        shown = focus or next(iter(picks))
        for i, (model, c) in enumerate(picks.items()):
            line = rows[(rows["model"] == model) & (rows["layer"] == c["layer"])
                        & (rows["kind"] == "forward")].sort_values("iteration")
            if line.empty:
                continue
            err = _error_bars(line)
            ax.errorbar(line["iteration"] + style.dodge(i, len(picks), 0.06),
                        line["similarity"], yerr=err, marker="o",
                        capsize=3, color=palette[model], label=f"{model} {c['layer']}")
            if model != shown or subjects is None:  # subjects' points: the focus model's
                continue
            points = subjects[(subjects["region"] == region) & (subjects["model"] == model)
                              & (subjects["layer"] == c["layer"])
                              & (subjects["kind"] == "forward")]
            sns.stripplot(data=points, x="iteration", y="similarity", native_scale=True,
                          color="0.5", size=2.5, alpha=0.6, jitter=0.12, legend=False, ax=ax)
        _ceiling(ax, rows)
        style.zero_line(ax)
        points = "" if subjects is None else f";\ngrey: {shown}, one point per subject"
        ax.set(title=f"{rows['dataset'].iloc[0]} {region.replace('_', ' ')}\n(error bars: "
               f"{_interval(rows)}{points})",
               xlabel="iteration t",
               ylabel=f"RDM similarity ({rows['method'].iloc[0]} correlation)")
        style.whole_numbers(ax)
        style.legend_outside(ax, title="model, committed layer")
    return fig


def model_comparison(labels: list[str], difference: np.ndarray, p: np.ndarray,
                     significant: np.ndarray, title: str) -> plt.Figure:
    """Heatmap of row - column similarity differences; '*' where FDR-significant."""
    fig, (ax,) = style.figure(panel=(1.2 * len(labels) + 2.5, 1.0 * len(labels) + 1.5))
    marks = np.where(significant, "*", "")
    text = np.array([[f"{d:+.3f}{m}" if np.isfinite(q) else "" for d, q, m in
                      zip(drow, prow, mrow, strict=True)]
                     for drow, prow, mrow in zip(difference, p, marks, strict=True)])
    limit = max(np.nanmax(np.abs(difference)), 1e-6)
    sns.heatmap(difference, annot=text, fmt="", cmap="RdBu_r", vmin=-limit, vmax=limit,
                xticklabels=labels, yticklabels=labels, ax=ax,
                cbar_kws={"label": "RDM similarity, row minus column"})
    ax.set(title=f"{title}\n(*: FDR-significant)", xlabel="model (column)",
           ylabel="model (row)")
    return fig


def layer_hierarchy(table: pd.DataFrame, iterations: dict[str, int]) -> plt.Figure:
    """Similarity against relative layer depth (forward features at each model's committed
    iteration; layer i of a model's n at i / n), one panel per region, with bootstrap
    intervals and the noise-ceiling band."""
    regions = list(dict.fromkeys(table["region"]))
    fig, axes = style.figure(len(regions), sharey=True)
    palette = style.model_palette(iterations)
    for ax, region in zip(axes, regions, strict=True):
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
                        color=palette[model],
                        label=f"{model} t={t} ({line['layer'].iloc[0]}..{line['layer'].iloc[-1]})")
        _ceiling(ax, table[table["region"] == region])
        ax.set(title=f"{rows['dataset'].iloc[0]} {region.replace('_', ' ')}\n(error bars: "
               f"{_interval(rows)})",
               xlabel="relative layer depth (layer i of n at i / n)",
               ylabel=f"RDM similarity ({rows['method'].iloc[0]} correlation)")
    style.legend_outside(axes[-1], title="model, iteration (layers)")
    return fig
