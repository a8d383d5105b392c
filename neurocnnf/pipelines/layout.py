"""The results tree of a workflow run: every output's folder under ``<results>/<name>/`` and
the name of every file a runner writes there.

A runner writes into the ``*Files`` of its folder (``DifficultyFiles(out).table``); the workflow
rules (workflows/rules/*.smk) declare the same paths (``LAYOUT.difficulty_files("{model}").table``)
and the
report reads them back, so each name is written down once, here. Arguments may be Snakemake
wildcards (``"{model}"``) or ``"*"`` (see ``ResultsLayout.matching``): the paths are built by
joining strings, never by looking at the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PURPOSES = ("difficulty",)  # the stimulus sets a run renders and extracts


def _file(name: str) -> property:
    """A property: the path of the file (or folder) ``name`` in the outputs' ``folder``."""
    return property(lambda self: self.folder / name, doc=f"``{name}`` in the folder.")


@dataclass(frozen=True)
class Files:
    """One runner's output folder; a subclass names, as properties, the files it writes."""

    folder: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))


class RobustnessFiles(Files):
    """``evaluate``: results.csv (one row per model x attack x eps x scoring), results.nc,
    table.md (Table 2), paired.csv/.md (CNN-F minus its twin, with twins), report.txt (the
    gradient-masking checks) and figures/."""

    results = _file("results.csv")
    dataset = _file("results.nc")
    table = _file("table.md")
    paired = _file("paired.csv")
    paired_table = _file("paired.md")
    masking = _file("report.txt")
    figures = _file("figures")  # every PNG in it goes into the report
    fgsm_figure = _file("figures/fig5a_fgsm.png")
    pgd_figure = _file("figures/fig5b_pgd.png")
    training_iterations_figure = _file("figures/fig5c_training_iterations.png")
    test_iterations_figure = _file("figures/fig5d_test_iterations.png")


class DifficultyFiles(Files):
    """``analyze difficulty``: one row per stimulus, accuracy per level, speed-accuracy, the
    summary and its figure."""

    table = _file("difficulty.csv")
    accuracy = _file("accuracy_by_level.csv")
    speed_accuracy = _file("speed_accuracy.csv")
    summary = _file("difficulty_summary.json")
    figure = _file("difficulty.png")


class PredictiveCodingFiles(Files):
    """``analyze predictive-coding``: one table per quantity, the summary and two figures."""

    summary = _file("summary.json")
    comparison = _file("comparison.png")
    ablations = _file("ablations.png")

    def table(self, quantity: str) -> Path:
        """The tidy table of one quantity (accuracy, prediction_error, ...)."""
        return self.folder / f"{quantity}.csv"


class NeuralDatasetFiles(Files):
    """``analyze neural``, one brain data set: similarity per model x layer x iteration, per
    subject, and figures (the RDM panels: the focus model's committed IT layer at the first
    and last iteration beside each region's subject-mean RDM)."""

    similarity = _file("similarity.csv")
    subjects = _file("subjects.csv")
    figure = _file("similarity_vs_iteration.png")
    hierarchy = _file("layer_hierarchy.png")
    rdms = _file("rdms.png")

    def model_comparison(self, region: str) -> Path:
        return self.folder / f"model_comparison_{region}.png"


class NeuralFiles(Files):
    """``analyze neural``: tests.csv, held_out.csv, commitment.json, summary.json, the CKA
    across iterations (cka.csv and one figure per model) and one folder per data set."""

    tests = _file("tests.csv")
    held_out = _file("held_out.csv")
    commitment = _file("commitment.json")
    summary = _file("summary.json")
    cka = _file("cka.csv")

    def cka_figure(self, model: str) -> Path:
        """CKA across the iterations of each forward layer of ``model``."""
        return self.folder / f"cka_{model}.png"

    def dataset(self, name: str) -> NeuralDatasetFiles:
        return NeuralDatasetFiles(self.folder / name)


class HumanUncertaintyFiles(Files):
    """``analyze human-uncertainty``: per-image and per-iteration tables, the paired
    comparisons, entropy against settling, the summary and two figures."""

    per_image = _file("per_image.csv")
    per_iteration = _file("per_iteration.csv")
    comparisons = _file("comparisons.csv")
    entropy_vs_iteration = _file("entropy_vs_iteration.csv")
    summary = _file("summary.json")
    entropy_figure = _file("entropy_vs_settling.png")
    cross_entropy_figure = _file("cross_entropy_vs_iteration.png")


class Figure6Files(Files):
    """``visualize``: restoration, decision cells and Grad-CAM (data .nc and figure .png each),
    the restoration distances and summary.txt."""

    restoration = _file("restoration.nc")
    restoration_figure = _file("restoration.png")
    restoration_distance = _file("restoration_distance.png")
    decision_cells = _file("decision_cells.nc")
    decision_cells_figure = _file("decision_cells.png")
    gradcam = _file("gradcam.nc")
    gradcam_figure = _file("gradcam.png")
    summary = _file("summary.txt")


@dataclass(frozen=True)
class ResultsLayout:
    """Paths of one run's outputs; ``root`` is ``<results>/<name>``; activation stores are
    NetCDF, or Zarr (``store=".zarr"``) where shards write them."""

    root: Path
    store: str = ".nc"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # data and models
    @property
    def manifest(self) -> Path:
        return self.root / "data" / "manifest.json"

    def model_run(self, model: str, seed: int | str) -> Path:
        """A training run's folder (results.json, best.safetensors, resume state)."""
        return self.root / "models" / model / f"seed{seed}"

    def trained(self, model: str, seed: int | str) -> Path:
        """The results.json a training run writes last: the run is finished."""
        return self.model_run(model, seed) / "results.json"

    def checkpoint(self, model: str, seed: int | str) -> Path:
        return self.model_run(model, seed) / "best.safetensors"

    # stimuli and activations
    def stimuli(self, purpose: str) -> Path:
        """The rendered stimulus set's table (images/ lie beside it)."""
        return self.root / "stimuli" / purpose / "stimuli.csv"

    def activations(self, model: str, purpose: str) -> Path:
        return self.root / "activations" / model / f"{purpose}{self.store}"

    def activation_shard(self, model: str, purpose: str, part: str) -> Path:
        """The marker of a sharded extraction's step ``part`` ('init' or a shard's index),
        written when it is done (the store's own progress files make the steps resumable)."""
        return self.root / "activations" / model / f"{purpose}.shards" / f"{part}.done"

    # analyses: one folder each, and the files its runner writes there
    @property
    def robustness(self) -> Path:
        return self.root / "robustness"

    @property
    def robustness_files(self) -> RobustnessFiles:
        return RobustnessFiles(self.robustness)

    def difficulty(self, model: str) -> Path:
        return self.root / "difficulty" / model

    def difficulty_files(self, model: str) -> DifficultyFiles:
        return DifficultyFiles(self.difficulty(model))

    @property
    def neural(self) -> Path:
        return self.root / "neural"

    @property
    def neural_files(self) -> NeuralFiles:
        return NeuralFiles(self.neural)

    @property
    def human_uncertainty(self) -> Path:
        return self.root / "human_uncertainty"

    @property
    def human_uncertainty_files(self) -> HumanUncertaintyFiles:
        return HumanUncertaintyFiles(self.human_uncertainty)

    @property
    def predictive_coding(self) -> Path:
        return self.root / "predictive_coding"

    @property
    def predictive_coding_files(self) -> PredictiveCodingFiles:
        return PredictiveCodingFiles(self.predictive_coding)

    @property
    def figure6(self) -> Path:
        return self.root / "figure6"

    @property
    def figure6_files(self) -> Figure6Files:
        return Figure6Files(self.figure6)

    @property
    def brainscore_plugins(self) -> Path:
        """One exported plugin folder per model (each with export.json)."""
        return self.root / "brainscore" / "plugin"

    # the report and the logs
    @property
    def report_markdown(self) -> Path:
        return self.root / "report.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    def log(self, *parts: str) -> Path:
        """``logs/<parts...>.log``: the last part is the file's stem."""
        *folders, stem = parts
        return self.root.joinpath("logs", *folders, f"{stem}.log")

    def matching(self, pattern: Path) -> list[Path]:
        """Existing paths matching a layout path with ``*`` for a name (sorted)."""
        return sorted(self.root.glob(str(Path(pattern).relative_to(self.root))))
