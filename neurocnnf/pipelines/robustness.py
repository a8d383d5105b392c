"""The robustness runner behind ``neurocnnf evaluate``: which attacks to run, on which models,
and the files it writes (results.csv/.nc, table.md, report.txt, figures/*.png).

Needs the ``analysis`` extra (pandas, xarray, matplotlib).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from neurocnnf.activations.store import in_child
from neurocnnf.attacks.evaluate import evaluate
from neurocnnf.attacks.masking import format_report, masking_report
from neurocnnf.attacks.paired import CORRECT, paired_markdown, paired_table, unpack
from neurocnnf.attacks.registry import ATTACKS, attack_names, get_attack
from neurocnnf.attacks.tables import markdown, paper_table
from neurocnnf.attacks.types import AttackSpec
from neurocnnf.data.download import file_digest
from neurocnnf.extras import require
from neurocnnf.io import atomic_write
from neurocnnf.lock import output_lock
from neurocnnf.models.trace import SCORINGS
from neurocnnf.pipelines.layout import RobustnessFiles
from neurocnnf.pipelines.partial import PARTIAL, clear_parts, load_part, save_part
from neurocnnf.stimuli import from_dataset, render

pd = require("pandas", "analysis", "the robustness runner (neurocnnf evaluate)")


def attack_plan(eps: float, eps_grid: list[float], attacks: list[str], pgd_steps: int = 40,
                spsa_steps: int = 20, large_eps: float = 0.5) -> list[AttackSpec]:
    """Clean; the requested attacks the registry puts on the grid (FGSM, PGD-k) on the first
    pass over ``eps_grid``; at ``eps``, each requested attack on its registered targets, and
    for PGD also k/4 steps (the more-steps check) and ``large_eps`` (the ~0 check). Attacks
    come in registry order. PGD and transfer take ``pgd_steps``, SPSA ``spsa_steps``, others
    their default steps."""
    steps = {"pgd": pgd_steps, "transfer": pgd_steps, "spsa": spsa_steps}
    chosen = [name for name in ATTACKS if name in attacks]
    specs = [AttackSpec("clean")]
    for e in sorted(set(eps_grid) | {eps}):
        specs += [AttackSpec(name, e, "first", steps.get(name, 0)) for name in chosen
                  if ATTACKS[name].on_grid]
    for name in chosen:
        specs += [AttackSpec(name, eps, target, steps.get(name, 0))
                  for target in ATTACKS[name].targets]
        if name == "pgd":
            specs += [AttackSpec("pgd", eps, "first", max(pgd_steps // 4, 1)),
                      AttackSpec("pgd", large_eps, "first", pgd_steps)]
    return specs


def check_request(attacks: tuple[str, ...], twins: int, limit: int | None,
                  test_iterations: tuple[int, ...], pgd_steps: int, spsa_steps: int,
                  batch_size: int, scorings: tuple[str, ...] = ("last", "avg")) -> None:
    """Raise ValueError for an evaluation that cannot run as asked, before any work."""
    if not attacks:
        raise ValueError(f"--attacks names no attack; choose from {', '.join(attack_names())} "
                         "(comma-separated)")
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack(s) {unknown}; choose from {', '.join(attack_names())} "
                         "(lower case, comma-separated)")
    for name in attacks:
        if get_attack(name).needs_twin and not twins:
            raise ValueError(f"the {name} attack needs the plain-CNN twin: pass --twin "
                             f"CHECKPOINT or leave {name} out of --attacks")
    if not scorings or any(s not in SCORINGS for s in scorings):
        raise ValueError(f"--scorings must name one or more of {', '.join(SCORINGS)} "
                         f"(comma-separated), got {','.join(scorings) or 'none'}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1 (or omitted for the whole test set), got {limit}")
    negative = [t for t in test_iterations if t < 0]
    if negative:
        raise ValueError(f"--test-iterations must be integers >= 0, got {negative}")
    for name, value in (("--pgd-steps", pgd_steps), ("--spsa-steps", spsa_steps),
                        ("--batch-size", batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def unique_names(paths: list[Path]) -> list[str]:
    """A distinct name per checkpoint file: its folder/stem, with more parent folders where
    two would share a name (runs/cnnf/seed0/best and runs/cnn/seed0/best)."""
    parts = [p.resolve().with_suffix("").parts for p in paths]
    depth = [2] * len(paths)
    while True:
        names = ["/".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        clashes = {n for n in names if names.count(n) > 1}
        if not clashes:
            return names
        grown = [d + 1 if n in clashes and d < len(p) else d
                 for p, d, n in zip(parts, depth, names, strict=True)]
        if grown == depth:  # the same file twice
            raise ValueError(f"checkpoint(s) given twice: {sorted(clashes)}")
        depth = grown


def test_images(dataset: str, limit: int | None) -> tuple[Tensor, Tensor]:
    """The first ``limit`` (None: all) test images of ``dataset`` as model input, through the
    package's input path (a StimulusSet rendered at the dataset's own size): float
    (N, C, H, W) in [0, 1], and their labels (N,) int64."""
    stimuli = from_dataset(dataset, "test", None)
    n = len(stimuli) if limit is None else min(limit, len(stimuli))
    channels, size = stimuli.images.shape[1], stimuli.images.shape[2]
    images = render(stimuli, np.arange(n), channels, size)
    labels = torch.tensor(stimuli.metadata["label"].to_numpy()[:n], dtype=torch.int64)
    return images, labels


def run_evaluation(
    checkpoints: list[Path],
    out: Path,
    twins: list[Path] | tuple[Path, ...] = (),
    dataset: str = "fashion_mnist",
    limit: int | None = 1000,
    eps: float = 0.1,
    eps_grid: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2),
    attacks: tuple[str, ...] = ("fgsm", "pgd", "spsa", "transfer"),
    pgd_steps: int = 40,
    spsa_steps: int = 20,
    test_iterations: tuple[int, ...] = (),
    batch_size: int = 256,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    scorings: tuple[str, ...] = ("last", "avg"),
) -> pd.DataFrame:
    """Evaluate checkpoints and their plain-CNN twins; write every output under ``out``.

    With several seeds, pass one twin per checkpoint (same order): checkpoint i takes its
    transfer examples from twin i (modulo the number of twins), and every twin is a CNN row.
    ``scorings``: the logits CNN-F is scored on ('last', 'avg', 'first'); an attack aimed at
    the scored logits (e2e) runs once per scoring, so one scoring halves their cost.
    A killed run resumes when rerun with the same arguments: each model's rows are kept in
    ``out/.partial/`` as soon as it is evaluated, until the outputs are written. A second
    evaluation into ``out`` while this one runs fails at once (LockError naming the holder).
    """
    from neurocnnf.outputs import check_output_folder
    from neurocnnf.train import load_checkpoint, load_model
    from neurocnnf.train.checkpoint import resolve_checkpoint

    check_request(attacks, len(twins), limit, test_iterations, pgd_steps, spsa_steps,
                  batch_size, scorings)
    require("h5netcdf", "analysis", "writing results.nc")  # before the attacks, not after
    specs = attack_plan(eps, list(eps_grid), list(attacks), pgd_steps, spsa_steps)
    check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):  # one writer per output folder (``<out>.lock``), before any work
        from neurocnnf.viz import robustness as fig  # slow to import: after the checks
        files = [resolve_checkpoint(p) for p in [*twins, *checkpoints]]
        names = unique_names(files)
        twin_names, names = names[:len(twins)], names[len(twins):]
        images, labels = test_images(dataset, limit)
        # every checkpoint is read before any attack runs: a bad one fails the command up front
        twin_models = [load_model(t, map_location=device) for t in twins]
        loaded_checkpoints = [load_checkpoint(p, map_location=device) for p in files[len(twins):]]
        digests = [file_digest(f) for f in files]
        request = {"dataset": dataset, "limit": limit, "seed": seed, "batch_size": batch_size,
                   "device": str(device)}
        frames = []
        cnn_specs = [s for s in specs if s.attack == "clean" or not get_attack(s.attack).needs_twin]
        sweep = [s for s in specs if s.attack == "clean" or (
            s.attack == "pgd" and s.target == "first" and s.steps == pgd_steps)]
        for name, twin_model, digest in zip(twin_names, twin_models, digests[:len(twins)],
                                            strict=True):
            part = {**request, "name": name, "checkpoint": digest,
                    "specs": [repr(s) for s in cnn_specs]}
            if (kept := resumed(out, part, name)) is None:
                kept = evaluate(twin_model, images, labels, cnn_specs, twin=None,
                                batch_size=batch_size, seed=seed, name=name, label="CNN",
                                progress=progress)
                save_part(out, part, kept)
            frames.append(kept)
        for index, (loaded, name) in enumerate(zip(loaded_checkpoints, names, strict=True)):
            twin_index = index % len(twins) if twins else None
            part = {**request, "name": name, "checkpoint": digests[len(twins) + index],
                    "specs": [repr(s) for s in specs], "scorings": list(scorings),
                    "test_iterations": list(test_iterations), "pgd_steps": pgd_steps,
                    "twin": None if twin_index is None else digests[twin_index]}
            if (kept := resumed(out, part, name)) is not None:
                frames.append(kept)
                continue
            model, label = loaded.model, loaded.name
            twin_model = None if twin_index is None else twin_models[twin_index]
            parts = [evaluate(model, images, labels, specs, scorings, twin=twin_model,
                              batch_size=batch_size, seed=seed, name=name, label=label,
                              progress=progress)]
            for t in test_iterations:
                parts.append(evaluate(
                    model, images, labels, sweep, scorings=("last",), batch_size=batch_size,
                    seed=seed, name=name, label=label, iterations=t, progress=progress
                ).assign(sweep="test_iterations"))
            twin_name = None if twin_index is None else twin_names[twin_index]
            frames.append(pd.concat(parts, ignore_index=True).assign(twin=twin_name))
            save_part(out, part, frames[-1])
        results = pd.concat(frames, ignore_index=True)
        for column in ("sweep", "twin"):  # '' where a row has none (text columns in results.nc)
            results[column] = results[column].fillna("") if column in results else ""
        write_outputs(results, out, eps, fig)
        clear_parts(out)
        return results


def resumed(out: Path, part: dict, name: str) -> pd.DataFrame | None:
    """The rows a killed run of the same request kept for one model, or None."""
    kept = load_part(out, part)
    if kept is not None:
        print(f"resuming: {name} was evaluated by an earlier run ({out / PARTIAL})")
    return kept


def write_outputs(results: pd.DataFrame, out: Path, eps: float, fig) -> None:
    """The :class:`RobustnessFiles` under ``out``: results (CSV and NetCDF), Table 2, the
    paired comparison (with twins), the gradient-masking report and the figures."""
    from neurocnnf.viz.style import save_figure

    files = RobustnessFiles(out)
    files.folder.mkdir(parents=True, exist_ok=True)
    atomic_write(files.results, lambda tmp: results.to_csv(tmp, index=False))
    dataset = results_dataset(results)
    atomic_write(files.dataset, lambda tmp: _to_netcdf(dataset, tmp))
    main = results[results["sweep"] == ""]
    table = markdown(paper_table(main, eps))
    paired = paired_table(main, eps)
    report = format_report(masking_report(main))
    atomic_write(files.table, lambda tmp: Path(tmp).write_text(
        f"Accuracy (%) at eps = {eps} (pixel scale), n = {int(main['n'].max())}\n\n{table}\n"))
    if not paired.empty:
        atomic_write(files.paired, lambda tmp: paired.to_csv(tmp, index=False))
        atomic_write(files.paired_table, lambda tmp: Path(tmp).write_text(
            paired_markdown(paired) + "\n"))
    atomic_write(files.masking, lambda tmp: Path(tmp).write_text(report + "\n"))
    save_figure(fig.accuracy_vs_eps(main, "fgsm"), files.fgsm_figure)
    save_figure(fig.accuracy_vs_eps(main, "pgd"), files.pgd_figure)
    if main["trained_iterations"].nunique() > 1:
        save_figure(fig.accuracy_vs_training_iterations(main),
                    files.training_iterations_figure)
    sweep = results[results["sweep"] == "test_iterations"]
    if not sweep.empty:
        save_figure(fig.accuracy_vs_test_iterations(sweep),
                    files.test_iterations_figure)
    print(table)
    if not paired.empty:
        print(paired_markdown(paired))
    print(report)


def _to_netcdf(dataset, path: str) -> None:
    """``dataset`` to a NetCDF file in a forked child (HDF5 cannot survive a failed write, a
    full disk, in the process that made it); OSError naming the cause if it failed."""
    error = in_child(lambda: dataset.to_netcdf(path, engine="h5netcdf"))
    if error is not None:
        raise OSError(error)


def results_dataset(results: pd.DataFrame):
    """``results`` as an xarray Dataset over ``row``; the packed per-image correctness becomes
    a bool variable ``correct`` (row, image) when every row has it for the same images."""
    import xarray as xr

    table = results.drop(columns=[CORRECT], errors="ignore")
    dataset = xr.Dataset.from_dataframe(table.rename_axis("row"))
    if CORRECT in results and results[CORRECT].notna().all() and results["n"].nunique() == 1:
        dataset[CORRECT] = (("row", "image"), np.stack([unpack(t) for t in results[CORRECT]]))
        dataset[CORRECT].attrs["description"] = (
            "per test image (in test-set order): correct under the row's attack and scoring")
    return dataset
