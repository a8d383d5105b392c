"""The one look of every neurocnnf figure: the seaborn theme and font sizes, one colour per kind
of model (the plain-CNN twin, CNN-F, the predictive-coding comparator), legends beside the
data, bar and count axes from zero, the interval named, and saving.

Every figure function of ``neurocnnf.viz`` draws on :func:`figure` (or calls :func:`apply`
before a seaborn figure-level plot) and places its legends with :func:`legend_outside`;
tests/test_viz_style.py checks each of them for these rules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# font sizes in points, for a figure printed at its own size (a panel about 4.8 x 3.6 inches)
FONT_SIZES = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
              "ytick.labelsize": 8, "legend.fontsize": 8, "legend.title_fontsize": 8,
              "figure.titlesize": 10}
PANEL = (4.8, 3.6)  # inches of one panel of a line or bar plot
DPI = 150  # of a saved figure

_COLOURBLIND = sns.color_palette("colorblind")
# one colour per kind of model; several models of a kind get shades of it (light to dark)
KIND_COLOURS = {"twin": _COLOURBLIND[7], "CNN-F": _COLOURBLIND[0], "PC": _COLOURBLIND[1],
                "other": _COLOURBLIND[2]}
MARKERS = ("o", "s", "^", "D", "v", "P", "X")

# the intervals a figure can show, named as its label says them
BOOTSTRAP_CI = "95 % bootstrap CI"
DUAL_BOOTSTRAP_CI = "95 % bootstrap CI (subjects, stimuli)"
NEWCOMBE_CI = "95 % Newcombe CI, paired images"
SEED_T_CI = "95 % t interval over seeds"
SEED_SD = "± 1 s.d. over seeds"


def apply() -> None:
    """Set the theme (seaborn 'ticks', colour-blind palette, :data:`FONT_SIZES`) for the
    figures drawn next."""
    sns.set_theme(context="paper", style="ticks", palette="colorblind", rc={
        **FONT_SIZES, "axes.spines.top": False, "axes.spines.right": False,
        "legend.frameon": False, "savefig.dpi": DPI, "savefig.bbox": "tight",
        "image.cmap": "viridis"})


def figure(ncols: int = 1, nrows: int = 1, panel: tuple[float, float] = PANEL,
           **subplots) -> tuple[Figure, np.ndarray]:
    """A styled figure of nrows x ncols panels of ``panel`` inches (constrained layout, which
    makes room for titles, colour bars and legends outside the axes); the axes as a flat
    array in row order."""
    apply()
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows),
                             squeeze=False, layout="constrained", **subplots)
    return fig, axes.ravel()


def model_kind(name: str) -> str:
    """'twin', 'CNN-F', 'PC' or 'other' from a model's label or name (CNN, CNN-F-5 (last),
    fmnist-small-cnnf5, PC-2, cnn-s0, ...)."""
    text = str(name).lower()
    if re.search(r"(^|[^a-z])pc([^a-z]|$)", text):
        return "PC"
    if re.search(r"cnn-?f", text):
        return "CNN-F"
    if re.search(r"cnn|twin", text):
        return "twin"
    return "other"


def model_palette(names: Iterable[str]) -> dict[str, tuple]:
    """name -> colour: the kind's colour (:data:`KIND_COLOURS`), in shades from light to dark
    where a kind has several names (in the order given)."""
    names = list(dict.fromkeys(names))
    palette = {}
    for kind, colour in KIND_COLOURS.items():
        members = [n for n in names if model_kind(n) == kind]
        shades = ([colour] if len(members) == 1 else
                  sns.light_palette(colour, n_colors=len(members) + 1)[1:])
        palette.update(zip(members, shades, strict=False))
    return palette


def by_kind(names: Iterable[str]) -> list[str]:
    """The distinct names, grouped by kind (twin, CNN-F, PC, other), in their order within a
    kind: the order of a legend."""
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda n: list(KIND_COLOURS).index(model_kind(n)))


def model_markers(names: Iterable[str]) -> dict[str, str]:
    """name -> marker, a different one for each name (in the order given)."""
    names = list(dict.fromkeys(names))
    return {n: MARKERS[i % len(MARKERS)] for i, n in enumerate(names)}


def legend_outside(ax: Axes, title: str | None = None, **legend) -> None:
    """The axes' legend (seaborn's or one made from its labelled artists) to the right of the
    axes, outside the data."""
    place = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
    if ax.get_legend() is not None:
        sns.move_legend(ax, **place, **({"title": title} if title is not None else {}),
                        **legend)
    else:
        ax.legend(title=title, **place, **legend)


def drop_legend(ax: Axes) -> None:
    """Remove the legend a seaborn call put on a panel (another panel shows it)."""
    if ax.get_legend() is not None:
        ax.get_legend().remove()


def whole_numbers(ax: Axes) -> None:
    """Ticks at whole numbers only on the x axis (iterations, epochs)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def from_zero(ax: Axes, top: float | None = None) -> None:
    """The y axis from 0 (bars, counts, accuracies), up to ``top`` or as drawn."""
    ax.set_ylim(0, top if top is not None else max(ax.get_ylim()[1], 0))


def zero_line(ax: Axes) -> None:
    """A thin horizontal line at 0 (a difference's 'no effect')."""
    ax.axhline(0, color="black", lw=0.6, zorder=0)


def dodge(index: int, count: int, step: float) -> float:
    """How far to move series ``index`` of ``count`` along x so that series drawn at the same
    x values (with error bars) do not hide each other: ``step`` apart, centred on 0."""
    return step * (index - (count - 1) / 2)


def picture(ax: Axes) -> None:
    """An axes that shows an image: no ticks, no frame (a row label set afterwards stays)."""
    ax.set(xticks=[], yticks=[])
    for spine in ax.spines.values():
        spine.set_visible(False)


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Save a figure (PNG unless the suffix says otherwise) atomically, cropped to what it
    draws (legends outside the axes included), and close it."""
    from neurocnnf.io import atomic_write

    path = Path(path)
    suffix = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=suffix,
                                               bbox_inches="tight"))
    plt.close(fig)
    return path
