"""Every figure of neurocnnf.viz follows the one style of neurocnnf.viz.style. The plotting
functions are found by walking the package (a new one fails here until it is drawn below),
each is drawn from tables of the shape its pipeline writes (the committed result files where
there are some), and its figure is checked: the style was applied (its font sizes), axis
labels are words rather than variable names, legends, titles and panels do not cover each
other, bar axes start at zero, a heatmap or data image has a colour bar, and wherever error
bars or bands are drawn the figure names their interval."""

import importlib
import inspect
import json
import pkgutil
from itertools import combinations
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib import collections  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

import neurocnnf.viz  # noqa: E402
from neurocnnf.viz import style  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"
REPRODUCTION, NEURAL = DOCS / "reproduction", DOCS / "neural"
# a band of fill_between (its own class from matplotlib 3.10 on)
BAND = getattr(collections, "FillBetweenPolyCollection", collections.PolyCollection)
INTERVALS = (style.BOOTSTRAP_CI, style.DUAL_BOOTSTRAP_CI, style.NEWCOMBE_CI, style.SEED_T_CI,
             style.SEED_SD)


# ------------------------------------------------------------------ the inputs of each figure

def _blank(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Text columns read back from CSV with '' where a row has none (as the pipelines keep
    them)."""
    return frame.assign(**{c: frame[c].astype(object).where(frame[c].notna(), "")
                           for c in columns})


def _reproduction() -> pd.DataFrame:
    """The 15 seed runs of docs/reproduction (CNN, CNN-F-1/2/5, PC-5; FGSM/PGD-40 curves)."""
    runs = sorted(REPRODUCTION.glob("*-s[0-9].csv"))
    return _blank(pd.concat([pd.read_csv(p) for p in runs], ignore_index=True), "sweep")


def _evaluated() -> pd.DataFrame:
    """``neurocnnf evaluate``'s results.csv of a CNN-F-5 and its twin (per-image correctness)."""
    results = pd.read_csv(REPRODUCTION / "fig5-15epochs" / "seed0" / "results.csv")
    return _blank(results, "sweep", "twin")


def _cka_table() -> pd.DataFrame:
    """iteration_cka_table's rows of one model: two layers, three iterations."""
    from neurocnnf.analysis.cka import iteration_cka_table

    values = np.random.default_rng(0).standard_normal((20, 3, 8)).cumsum(1)
    return iteration_cka_table({"CNN-F": {"conv1": values, "conv2": values ** 2}})


def _rdms() -> tuple[dict[str, np.ndarray], list[str]]:
    rng = np.random.default_rng(0)
    categories = [c for c, n in (("human face", 12), ("animal body", 12), ("natural", 23),
                                 ("artificial", 21)) for _ in range(n)]
    rdms = {}
    for name in ("h_hat t=0", "h_hat t=5", "macaque IT", "human IT"):
        a = rng.random((len(categories), len(categories)))
        rdms[name] = (a + a.T) * (1 - np.eye(len(categories)))
    return rdms, categories


def _difficulty() -> tuple[pd.DataFrame, pd.DataFrame, str]:
    rng = np.random.default_rng(0)
    levels = np.repeat([0.0, 0.1, 0.2, 0.3], 25)
    table = pd.DataFrame({"level": levels,
                          "settling_iteration": rng.integers(1, 6, len(levels))})
    accuracy = pd.DataFrame({"level": [0.0, 0.1, 0.2, 0.3], "first": [0.9, 0.8, 0.6, 0.4],
                             "last": [0.9, 0.82, 0.65, 0.45]})
    return table, accuracy.assign(gain=accuracy["last"] - accuracy["first"]), \
        "noise level (noise sd in pixel scale)"


def _corruptions() -> tuple[pd.DataFrame, dict[str, int]]:
    models = {"cifar10-cnn": 0, "cifar10-cnnf1": 2, "cifar10-pc": 2}
    rows = [{"model": m, "corruption": "none", "severity": 0, "iterations": t,
             "accuracy": 0.8} for m, own in models.items() for t in range(own + 1)]
    rows += [{"model": m, "corruption": c, "severity": s, "iterations": t,
              "accuracy": 0.8 - 0.1 * s + 0.01 * t}
             for m, own in models.items() for t in range(own + 1)
             for c in ("gaussian_noise", "contrast") for s in range(1, 6)]
    return pd.DataFrame(rows), models


def _neural() -> tuple[pd.DataFrame, pd.DataFrame, dict, str]:
    """docs/neural's algonauts92 table, and one point per subject around each mean (the
    subjects' table is not committed)."""
    table = pd.read_csv(NEURAL / "algonauts92" / "similarity.csv")
    chosen = json.loads((NEURAL / "commitment.json").read_text())["regions"]
    rng = np.random.default_rng(0)
    subjects = pd.concat([table.assign(subject=f"s{i}", similarity=table["similarity"]
                                       + rng.normal(0, 0.05, len(table))) for i in range(5)])
    return table, subjects, chosen, "CNN-F"


def _model_comparison():
    labels = ["CNN-F", "CNN", "PC"]
    difference = np.array([[np.nan, 0.02, -0.01], [-0.02, np.nan, -0.03], [0.01, 0.03, np.nan]])
    p = np.where(np.isnan(difference), np.nan, 0.04)
    return labels, difference, p, p < 0.05, "algonauts92 IT: row minus column"


def _human() -> tuple[pd.DataFrame, pd.DataFrame]:
    table = pd.read_csv(NEURAL / "human_uncertainty" / "per_iteration.csv")
    rng = np.random.default_rng(0)
    per_image = pd.DataFrame({"human_entropy": rng.random(200) * 2,
                              "CNN-F_settling": rng.integers(1, 6, 200),
                              "CNN-F_halted_at": rng.integers(1, 6, 200)})
    return per_image, table


_CACHE: dict = {}


def _tiny():
    """An untrained FMNIST-small CNN-F (3 iterations), a PC comparator and their plain twin,
    with 12 images: the Fig. 6 data and the predictive-coding tables computed for real."""
    if not _CACHE:
        from neurocnnf.analysis.predictive_coding import compare
        from neurocnnf.models import build_model
        from neurocnnf.viz import feedback

        torch.manual_seed(0)
        models = {"CNN-F": build_model("fmnist_small", iterations=3).eval(),
                  "PC": build_model("fmnist_pc", iterations=3).eval(),
                  "CNN": build_model("fmnist_small", iterations=0).eval()}
        images = torch.rand(12, 1, 28, 28)
        labels = torch.arange(12) % 10
        noisy = (images + 0.2 * torch.randn_like(images)).clamp(0, 1)
        cnnf = models["CNN-F"]
        _CACHE["restoration"] = feedback.restoration_data(cnnf, images[:4], {"noise": noisy[:4]})
        _CACHE["cells"] = feedback.decision_cells_data(
            cnnf, images[0], feedback.principal_directions(images), resolution=7)
        _CACHE["cams"] = feedback.grad_cam_data(cnnf, images[:2], "conv1")
        with torch.no_grad():
            trace = cnnf(images[:2])
        _CACHE["predictions"] = torch.stack(trace.logits, 1).argmax(-1).numpy()
        _CACHE["images"] = images
        _CACHE["tables"] = compare(models, {0.0: images, 0.2: noisy}, labels, iterations=3,
                                   progress=False)
    return _CACHE


def _figures() -> dict:
    """'module.function' -> a call drawing its figure."""
    from neurocnnf.viz import analysis, corruptions, feedback, human, neural, predictive
    from neurocnnf.viz import robustness as rob

    classes = [f"class {i}" for i in range(10)]
    return {
        "analysis.cka_matrices": lambda: analysis.cka_matrices(_cka_table(), "CNN-F"),
        "analysis.rdm_panels": lambda: analysis.rdm_panels(*_rdms()),
        "analysis.settling_vs_difficulty": lambda: analysis.settling_vs_difficulty(*_difficulty()),
        "corruptions.accuracy_by_severity":
            lambda: corruptions.accuracy_by_severity(*_corruptions()),
        "corruptions.accuracy_by_iteration":
            lambda: corruptions.accuracy_by_iteration(*_corruptions()),
        "feedback.plot_restoration":
            lambda: feedback.plot_restoration(_tiny()["restoration"], classes=classes),
        "feedback.plot_restoration_distance":
            lambda: feedback.plot_restoration_distance(_tiny()["restoration"]),
        "feedback.plot_decision_cells":
            lambda: feedback.plot_decision_cells(_tiny()["cells"], classes),
        "feedback.plot_grad_cam": lambda: feedback.plot_grad_cam(
            _tiny()["images"][:2], _tiny()["cams"], _tiny()["predictions"], classes),
        "human.entropy_vs_settling":
            lambda: human.entropy_vs_settling(_human()[0], "CNN-F"),
        "human.cross_entropy_vs_iteration":
            lambda: human.cross_entropy_vs_iteration(_human()[1]),
        "neural.similarity_vs_iteration": lambda: neural.similarity_vs_iteration(*_neural()),
        "neural.model_comparison": lambda: neural.model_comparison(*_model_comparison()),
        "neural.layer_hierarchy": lambda: neural.layer_hierarchy(
            _neural()[0], {"CNN-F": 1, "CNN": 0, "PC": 2}),
        "predictive.comparison_panels":
            lambda: predictive.comparison_panels(_tiny()["tables"]),
        "predictive.ablation_accuracy":
            lambda: predictive.ablation_accuracy(_tiny()["tables"]),
        "robustness.accuracy_vs_eps": lambda: rob.accuracy_vs_eps(_evaluated(), "pgd"),
        "robustness.accuracy_vs_training_iterations":
            lambda: rob.accuracy_vs_training_iterations(_reproduction(), "pgd", "first"),
        "robustness.accuracy_vs_test_iterations":
            lambda: rob.accuracy_vs_test_iterations(
                _reproduction().query("sweep == 'test_iterations'")),
    }


FIGURES = _figures()


def _figure_functions() -> set[str]:
    """Every public function of a neurocnnf.viz module that returns a Figure."""
    found = set()
    for info in pkgutil.iter_modules(neurocnnf.viz.__path__):
        module = importlib.import_module(f"neurocnnf.viz.{info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            returns = str(inspect.signature(function).return_annotation)
            if (function.__module__ == module.__name__ and not name.startswith("_")
                    and "Figure" in returns and info.name != "style"):
                found.add(f"{info.name}.{name}")
    return found


# ------------------------------------------------------------------ the checks

def test_every_figure_function_is_drawn_here():
    assert _figure_functions() == set(FIGURES)


def test_every_figure_module_draws_through_the_style_module():
    """No module makes its own figures or layout: style.figure (constrained layout) or
    style.apply before a seaborn figure-level plot."""
    for info in pkgutil.iter_modules(neurocnnf.viz.__path__):
        if info.name == "style":
            continue
        source = Path(neurocnnf.viz.__path__[0], f"{info.name}.py").read_text()
        if "-> plt.Figure" not in source:
            continue
        assert "from neurocnnf.viz import style" in source, info.name
        for banned in ("plt.subplots(", "tight_layout(", "plt.figure("):
            assert banned not in source, f"neurocnnf/viz/{info.name}.py calls {banned}"


def _colour_bars(fig) -> list:
    return [ax for ax in fig.axes if hasattr(ax, "_colorbar")]


def _shows_interval(ax) -> bool:
    """Error bars with a finite length, or a filled band (fill_between)."""
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            for lines in container.lines[2]:
                if any(np.isfinite(s).all() and np.ptp(s, axis=0).any()
                       for s in lines.get_segments()):
                    return True
    return any(isinstance(c, BAND) and not isinstance(c, QuadMesh | Quiver)
               and any(len(p.vertices) for p in c.get_paths()) for c in ax.collections)


def _texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_the_figure_follows_the_style(name):
    matplotlib.rcdefaults()  # a function that skips the style draws in matplotlib's defaults
    fig = FIGURES[name]()
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        assert matplotlib.rcParams["axes.spines.top"] is False, "the style was not applied"
        bars = _colour_bars(fig)
        axes = [ax for ax in fig.axes if ax not in bars and ax.get_visible()]
        labelled = [ax for ax in axes if ax.get_xticklabels() or ax.get_yticklabels()]
        for ax in labelled:
            for tick in ax.get_xticklabels()[:1] + ax.get_yticklabels()[:1]:
                assert tick.get_fontsize() == style.FONT_SIZES["xtick.labelsize"], name
        # axis labels: words (two or more), not a column's name
        labels = [lab for ax in labelled for lab in (ax.get_xlabel(), ax.get_ylabel()) if lab]
        for label in labels:
            assert len(label.split()) >= 2, f"{name}: axis label {label!r} is not in words"
        plotted = [ax for ax in axes if ax.lines or ax.collections or ax.containers]
        if plotted and not any(ax.images for ax in plotted):
            assert any(ax.get_xlabel() for ax in plotted), f"{name}: no x label"
            assert any(ax.get_ylabel() for ax in plotted), f"{name}: no y label"
        # legends, titles and panels: none covers another
        boxes = [(f"axes {i}", ax.get_window_extent(renderer)) for i, ax in enumerate(axes)]
        boxes += [(f"title of axes {i}", ax.title.get_window_extent(renderer))
                  for i, ax in enumerate(axes) if ax.get_title()]
        legends = [ax.get_legend() for ax in axes if ax.get_legend()] + list(fig.legends)
        boxes += [(f"legend {i}", lg.get_window_extent(renderer))
                  for i, lg in enumerate(legends)]
        for (a, box_a), (b, box_b) in combinations(boxes, 2):
            if a.startswith("title") and b == f"axes {a.split()[-1]}":
                continue  # a title sits on its own axes' top edge
            assert not box_a.overlaps(box_b), f"{name}: {a} covers {b}"
        # bars from zero
        for ax in axes:
            for container in ax.containers:
                if isinstance(container, BarContainer):
                    low = (ax.get_ylim() if container.orientation == "vertical"
                           else ax.get_xlim())[0]
                    assert low == 0, f"{name}: a bar axis starts at {low}"
        # a data image or heatmap comes with a colour bar
        for ax in axes:
            data_images = [im for im in ax.images if im.get_array().ndim == 2
                           and im.get_cmap().name != "gray"]
            data_images += [c for c in ax.collections if isinstance(c, QuadMesh)]
            if data_images:
                assert bars, f"{name}: a heatmap without a colour bar"
                assert all(b.get_ylabel() or b.get_xlabel() for b in bars), \
                    f"{name}: a colour bar without a label"
        # the interval is named
        if any(_shows_interval(ax) for ax in axes):
            assert any(i in _texts(fig) for i in INTERVALS), \
                f"{name}: error bars or bands, but no text names their interval"
    finally:
        plt.close(fig)


def test_a_figure_that_skips_the_style_fails_the_check():
    """The checks above can fail: a legend on the data and a bar axis from 0.5."""
    matplotlib.rcdefaults()
    fig, ax = plt.subplots()
    ax.bar([0, 1], [1, 2], label="bars")
    ax.set_ylim(0.5, 2.5)
    ax.legend(loc="center")
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert legend.overlaps(ax.get_window_extent(fig.canvas.get_renderer()))
    assert matplotlib.rcParams["axes.spines.top"] is True
    plt.close(fig)


def test_model_kinds_and_their_colours():
    assert [style.model_kind(n) for n in ("CNN", "CNN-F-5 (last)", "fmnist-small-cnnf5",
                                          "PC-5", "cnn-s0", "FMNIST-PC", "ablation")] == \
        ["twin", "CNN-F", "CNN-F", "PC", "twin", "PC", "other"]
    palette = style.model_palette(["CNN", "CNN-F-1", "CNN-F-5", "PC-5"])
    assert palette["CNN"] == style.KIND_COLOURS["twin"]
    assert palette["PC-5"] == style.KIND_COLOURS["PC"]
    assert palette["CNN-F-1"] != palette["CNN-F-5"]  # shades of one colour
    assert style.by_kind(["PC-5", "CNN-F-1", "CNN"]) == ["CNN", "CNN-F-1", "PC-5"]


def test_the_fig5_difference_panel_is_each_cnnf_minus_its_twin():
    """From per-image correctness: the panel's numbers are paired_table's (Newcombe)."""
    from neurocnnf.attacks.paired import paired_table
    from neurocnnf.viz.robustness import twin_differences

    results = _evaluated()
    found = twin_differences(results, "pgd", "first")
    paired = paired_table(results, 0.05)
    expected = paired[(paired["attack"] == "pgd") & (paired["target"] == "first")
                      & (paired["steps"] == 40)]
    row = found[found["eps"] == 0.05].iloc[0]
    assert row["difference_pp"] == pytest.approx(expected["difference_pp"].iloc[0])
    assert (row["low_pp"], row["high_pp"]) == pytest.approx(
        (expected["low_pp"].iloc[0], expected["high_pp"].iloc[0]))
    assert row["interval"] == style.NEWCOMBE_CI
    assert set(found["eps"]) == {0.0, 0.05, 0.5}
    label = results.loc[results["trained_iterations"] > 0, "label"].iloc[0]
    assert set(found["series"]) == {f"{label} (last)"}


def test_save_figure_crops_to_what_is_drawn_legends_outside_included(tmp_path):
    fig, (ax,) = style.figure()
    ax.plot([0, 1], [0, 1], label="a long legend entry that sits outside the axes")
    style.legend_outside(ax)
    path = style.save_figure(fig, tmp_path / "f.png")
    from PIL import Image

    width, _ = Image.open(path).size
    assert width > style.PANEL[0] * style.DPI  # wider than the panel: the legend is in it
