"""Robustness figures in the shape of the paper's Fig. 5, from evaluation results.

Every function takes the tidy table of ``neurocnnf.attacks.evaluate`` and returns a matplotlib
Figure; several checkpoints with one label give mean +- sd error bars (seeds).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


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
    """Clean rows (as eps 0) and ``attack`` rows aimed at ``target`` (optionally one scoring)."""
    data = _with_clean(results, attack)
    data = data[(data["target"] == target) | (data["attack"] == "clean")]
    return data if scoring is None else data[data["scoring"] == scoring]


def accuracy_vs_eps(results: pd.DataFrame, attack: str = "pgd", target: str = "first"
                    ) -> plt.Figure:
    """Fig. 5a (FGSM) / 5b (PGD): accuracy against eps, CNN vs CNN-F."""
    data = _attack_rows(_series(results), attack, target)
    if attack == "pgd" and not data.empty:
        deepest = data[data["attack"] == "pgd"]["steps"].max()
        data = data[(data["attack"] == "clean") | (data["steps"] == deepest)]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    sns.lineplot(data=data, x="eps", y="accuracy", hue="series", marker="o", errorbar="sd",
                 err_style="bars", ax=ax)
    title = attack.upper() + (f"-{int(data['steps'].max())}" if attack == "pgd" else "")
    ax.set(title=f"{title} ({target})", xlabel="eps (pixel scale)", ylabel="accuracy",
           ylim=(0, 1))
    fig.tight_layout()
    return fig


def accuracy_vs_training_iterations(results: pd.DataFrame, attack: str = "pgd",
                                    target: str = "first") -> plt.Figure:
    """Fig. 5c: accuracy against eps for models trained with different numbers of iterations."""
    data = _attack_rows(results, attack, target, "last").assign(
        trained=lambda d: d["trained_iterations"].map(lambda t: "CNN" if t == 0 else f"CNN-F-{t}"))
    fig, ax = plt.subplots(figsize=(5, 3.6))
    sns.lineplot(data=data, x="eps", y="accuracy", hue="trained", marker="o", errorbar="sd",
                 err_style="bars", ax=ax)
    ax.set(title=f"{attack.upper()} vs training iterations", xlabel="eps", ylabel="accuracy",
           ylim=(0, 1))
    fig.tight_layout()
    return fig


def accuracy_vs_test_iterations(results: pd.DataFrame, attack: str = "pgd") -> plt.Figure:
    """Fig. 5d: accuracy against the number of test iterations, one line per eps."""
    data = _attack_rows(results, attack, "first", "last")
    fig, ax = plt.subplots(figsize=(5, 3.6))
    sns.lineplot(data=data, x="iterations", y="accuracy", hue="eps", marker="o", errorbar="sd",
                 palette="viridis", ax=ax)
    ax.set(title=f"{attack.upper()} vs test iterations", xlabel="test iterations",
           ylabel="accuracy", ylim=(0, 1))
    fig.tight_layout()
    return fig
