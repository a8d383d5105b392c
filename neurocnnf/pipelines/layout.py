"""The results tree of a workflow run: every output's path under ``<results>/<name>/``.

The workflow rules (workflows/rules/*.smk) and the report both read their paths from here, so
the layout is written down once. Arguments may be Snakemake wildcards (``"{model}"``): the
paths are built by joining strings, never by looking at the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PURPOSES = ("similarity", "difficulty")  # the stimulus sets a run renders and extracts


@dataclass(frozen=True)
class ResultsLayout:
    """Paths of one run's outputs; ``root`` is ``<results>/<name>``."""

    root: Path

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
        return self.root / "activations" / model / f"{purpose}.nc"

    # analyses: one folder each
    @property
    def robustness(self) -> Path:
        """results.csv (one row per model x attack x eps x scoring), table.md, report.txt,
        results.nc and figures/."""
        return self.root / "robustness"

    def rsa(self, model: str) -> Path:
        """rsa.csv, noise_ceiling.json, rsa_vs_iteration.png, rdms.png, cka_<layer>.png."""
        return self.root / "rsa" / model

    def difficulty(self, model: str) -> Path:
        """difficulty.csv, speed_accuracy.csv, difficulty_summary.json, difficulty.png."""
        return self.root / "difficulty" / model

    @property
    def neural(self) -> Path:
        """<dataset>/similarity.csv, subjects.csv and figures, tests.csv, commitment.json,
        held_out.csv, summary.json (``analyze neural``)."""
        return self.root / "neural"

    @property
    def human_uncertainty(self) -> Path:
        """per_image.csv, per_iteration.csv, comparisons.csv, entropy_vs_iteration.csv,
        summary.json and figures (``analyze human-uncertainty``)."""
        return self.root / "human_uncertainty"

    @property
    def predictive_coding(self) -> Path:
        """<model>.csv tables, summary.json, comparison.png, ablations.png."""
        return self.root / "predictive_coding"

    @property
    def figure6(self) -> Path:
        """restoration/decision_cells/gradcam .nc and .png, summary.txt."""
        return self.root / "figure6"

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
