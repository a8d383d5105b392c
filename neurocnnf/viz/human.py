"""Figures of the human-uncertainty analysis (CIFAR-10H), from the tables of
:mod:`neurocnnf.pipelines.human_uncertainty`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from neurocnnf.viz import style

QUANTITIES = {"cross_entropy": "cross-entropy to the CIFAR-10H labels (nats)",
              "agreement_disputed": "top-1 = human plurality, disputed images (%)"}


def entropy_vs_settling(per_image: pd.DataFrame, focus: str) -> plt.Figure:
    """Human label entropy of the images (box: quartiles, whiskers: 1.5 IQR) against the
    iteration at which ``focus`` settles and, if recorded, halts (``per_image``: one row per
    image with 'human_entropy' and '<focus>_settling' / '<focus>_halted_at')."""
    kinds = [k for k in ("settling", "halted_at") if f"{focus}_{k}" in per_image]
    fig, axes = style.figure(max(len(kinds), 1))
    for ax, kind in zip(axes, kinds, strict=False):
        sns.boxplot(data=per_image, x=f"{focus}_{kind}", y="human_entropy", color="0.85",
                    showfliers=False, ax=ax)
        ax.set(xlabel=f"{focus}: {kind.replace('_', ' ')} iteration",
               ylabel="human label entropy (nats)",
               title="images by the iteration the model settles at")
        style.from_zero(ax)
    return fig


def cross_entropy_vs_iteration(table: pd.DataFrame) -> plt.Figure:
    """Per iteration, each model's cross-entropy to the human label distribution and its
    top-1 agreement with the human plurality on disputed images, with the bootstrap CI over
    images (``table``: model, iteration, quantity, value, ci_low, ci_high)."""
    fig, axes = style.figure(2)
    palette = style.model_palette(table["model"])
    for ax, (quantity, label) in zip(axes, QUANTITIES.items(), strict=True):
        rows = table[table["quantity"] == quantity]
        scale = 100 if label.endswith("(%)") else 1
        for model, part in rows.groupby("model", sort=False):
            err = scale * np.vstack([part["value"] - part["ci_low"],
                                     part["ci_high"] - part["value"]])
            ax.errorbar(part["iteration"], scale * part["value"], yerr=err, marker="o",
                        capsize=3, color=palette[model], label=model)
        ax.set(xlabel="iteration t", ylabel=label,
               title=f"error bars: {style.BOOTSTRAP_CI} over images")
        style.whole_numbers(ax)
    style.legend_outside(axes[-1], title="model")
    return fig
