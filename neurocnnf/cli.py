"""The ``neurocnnf`` command line (typer)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

# Shared option texts and defaults: one convention for every command (tests/test_cli.py checks
# it by walking this app). Nothing heavy is imported at module level, so that `--help` and a
# rejected option answer without loading torch.
MODEL_HELP = "checkpoint file, run folder or pretrained:NAME"
DEVICE_HELP = "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps"
PROGRESS_HELP = "show progress bars"
FORWARD_BATCH = 64  # images per model call when the model only runs forward
ATTACK_BATCH = 256  # images per batch of an attack evaluation (its seeds are drawn per batch)
ATTACKS_HELP = ("comma-separated, from fgsm, pgd, spsa, transfer (needs --twin), apgd-ce, "
                "apgd-dlr, apgd-t, square")
STIMULI_HELP = ("kriegeskorte92, algonauts92, algonauts78, fashion_mnist[:split[:n]], "
                "cifar10[:split[:n]] or folder:PATH[:CSV] (without a CSV: every image in PATH, "
                "ids from the file names, category from subfolders)")
LAYERS_HELP = ("comma-separated store variables: layers (conv1, ...), their feedback "
               "(conv2_feedback: brings its layer too), h_hat, logits, probabilities; the "
               "scalars (reconstruction_error, ...) are always stored; default all")

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


def _print_version(value: bool) -> None:
    if value:
        from neurocnnf import __version__

        typer.echo(f"neurocnnf {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """CNN-F for computational neuroscience and robustness research.

    Every model argument takes a checkpoint file, a run folder or `pretrained:NAME` (a model
    shipped with the package: `neurocnnf pretrained list`).
    """


def _fail(error: Exception) -> None:
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _device(name: str) -> str:
    """The device a --device option names, checked to be available here (else exit 2)."""
    from neurocnnf.device import DeviceError, resolve_device

    try:
        return str(resolve_device(name))
    except DeviceError as error:
        _fail(error)


def _writable(folder: Path) -> None:
    """Exit 2 before any work when the output folder cannot be written."""
    from neurocnnf.outputs import OutputError, check_output_folder

    try:
        check_output_folder(folder)
    except OutputError as error:
        _fail(error)


@app.command()
def train(
    preset: Annotated[str, typer.Argument(help="preset name (see `neurocnnf presets`) or YAML")],
    out: Annotated[Path, typer.Option(help="run folder")] = Path("runs/run"),
    set_: Annotated[list[str], typer.Option("--set", help="override, e.g. optim.lr=0.01")] = [],  # noqa: B006
    resume: Annotated[bool, typer.Option(help="continue an interrupted run in OUT")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace a run already in OUT")] = False,
    restart_if_changed: Annotated[bool, typer.Option(
        help="with --resume: start over if OUT was trained with another config")] = False,
    device: Annotated[str | None, typer.Option(
        help=DEVICE_HELP + " (default: the config's device, auto unless it says otherwise)")]
    = None,
    progress: Annotated[bool, typer.Option(help=PROGRESS_HELP)] = True,
) -> None:
    """Train a CNN-F (or its plain-CNN twin) and score the test set once at the end."""
    from neurocnnf.data import DataIntegrityError, DataNotFoundError
    from neurocnnf.io import WriteError
    from neurocnnf.lock import LockError
    from neurocnnf.train import CheckpointError, ConfigError, load_config
    from neurocnnf.train import train as run_training

    overrides = list(set_) + ([f"device={device}"] if device else [])
    try:
        config = load_config(preset, overrides)
    except ConfigError as error:
        _fail(error)
    _device(config.device)
    _writable(out)
    try:
        typer.echo(f"training {config.name} -> {out}")
        results = run_training(config, out, resume=resume, progress=progress,
                               restart_if_changed=restart_if_changed, overwrite=overwrite)
    except (ConfigError, CheckpointError, DataNotFoundError, DataIntegrityError,
            LockError, WriteError, FloatingPointError) as error:
        _fail(error)
    if results:  # empty on the non-main ranks of a torchrun job
        typer.echo(json.dumps(results["test"], indent=2))


@app.command()
def extract(
    checkpoint: Annotated[Path, typer.Argument(help=MODEL_HELP)],
    out: Annotated[Path, typer.Option(help="output store: .nc (NetCDF) or .zarr")],
    stimuli: Annotated[str, typer.Option(help=STIMULI_HELP)] = "fashion_mnist:test:1000",
    layers: Annotated[str | None, typer.Option(help=LAYERS_HELP)] = None,
    iterations: Annotated[int | None, typer.Option(help="T (default: the model's)")] = None,
    eta: Annotated[float | None, typer.Option(help="step size (default: the model's)")] = None,
    perturb: Annotated[list[str], typer.Option(help="KIND=L1,L2,... e.g. noise=0,0.1,0.2")]
    = [],  # noqa: B006
    reduce: Annotated[str | None, typer.Option(help="pca:K or random:K for layers > 1024")]
    = None,
    time_start: Annotated[float, typer.Option(help="ms at which iteration 0 starts")] = 70.0,
    time_step: Annotated[float, typer.Option(help="ms per iteration")] = 40.0,
    batch_size: Annotated[int, typer.Option(help="images per model call")] = FORWARD_BATCH,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    model_id: Annotated[str | None, typer.Option(help="name stored with the activations "
                                                 "(default: NAME of pretrained:NAME, else the "
                                                 "run folder's name)")] = None,
    strict: Annotated[bool, typer.Option(
        help="refuse stimuli the model does not take as they are (colour for a greyscale "
        "model, another size) instead of converting them with a warning")] = False,
    progress: Annotated[bool, typer.Option(help=PROGRESS_HELP)] = True,
    restart_if_changed: Annotated[bool, typer.Option(
        help="start over if OUT.partial was made from other inputs (default: refuse)")] = False,
    dtype: Annotated[str, typer.Option(help="storage type: float32 or float16 (half the "
                                       "bytes, recorded in the attrs)")] = "float32",
    compile_model: Annotated[bool, typer.Option(
        "--compile", help="torch.compile the model's iterations (no gain measured on a 2-core "
        "CPU; see benchmarks/README.md)")] = False,
) -> None:
    """Per-iteration activations of every layer for a stimulus set, as an xarray store."""
    from neurocnnf.activations import Reduce, StoreError, TimeBins
    from neurocnnf.activations import extract as run_extraction
    from neurocnnf.data import DataIntegrityError, DataNotFoundError
    from neurocnnf.data.download import file_digest
    from neurocnnf.lock import LockError
    from neurocnnf.pretrained import model_name
    from neurocnnf.stimuli import StimulusError, load_stimuli
    from neurocnnf.train import CheckpointError, load_model
    from neurocnnf.train.checkpoint import resolve_checkpoint

    try:
        model = load_model(checkpoint, map_location=_device(device))
        model.compiled = compile_model
        stimulus_set = _perturbed_set(load_stimuli(stimuli), perturb)
        reduction = Reduce.parse(reduce) if reduce else None
        checkpoint_file = resolve_checkpoint(checkpoint)
        path = run_extraction(
            model, stimulus_set, out, layers=_layers(layers),
            iterations=iterations, eta=eta, time_bins=TimeBins(time_start, time_step),
            reduce=reduction, batch_size=batch_size,
            model_id=model_id or model_name(checkpoint), strict=strict,
            checkpoint_sha256=file_digest(checkpoint_file), progress=progress,
            restart_if_changed=restart_if_changed, dtype=dtype)
    except (CheckpointError, StimulusError, StoreError, LockError, DataNotFoundError,
            DataIntegrityError, ValueError) as error:
        _fail(error)
    typer.echo(f"wrote {path}")


def _layers(text: str | None) -> list[str] | None:
    """--layers as the layer names to extract: a feedback variable (conv2_feedback) asks for
    its layer, whose feedback is stored with it; the scalars are always stored."""
    if not text:
        return None
    scalars = ("reconstruction_error", "logit_change", "mask_flip_fraction", "halted_at")
    names = [v.strip().removesuffix("_feedback") for v in text.split(",") if v.strip()]
    return list(dict.fromkeys(n for n in names if n not in scalars))


def _perturbed_set(stimulus_set, specs: list[str]):
    """Apply ``KIND=L1,L2,...`` perturbation grids to a stimulus set, in order."""
    from neurocnnf.stimuli import StimulusError, perturb

    for spec in specs:
        kind, sep, levels = spec.partition("=")
        if not sep or not levels:
            raise StimulusError(f"--perturb {spec!r} must look like KIND=L1,L2,...")
        stimulus_set = perturb(stimulus_set, kind, _numbers(levels, f"--perturb {kind}", float))
    return stimulus_set


@app.command()
def stimuli(
    spec: Annotated[str, typer.Argument(help=STIMULI_HELP)],
    out: Annotated[Path, typer.Option(help="folder for images/ and stimuli.csv")],
    perturb: Annotated[list[str], typer.Option(help="KIND=L1,L2,... e.g. noise=0,0.1,0.2")]
    = [],  # noqa: B006
    channels: Annotated[int, typer.Option(help="1 (grey) or 3 (RGB), as the models take")] = 1,
    size: Annotated[int, typer.Option(help="image side in pixels, as the models take")] = 28,
    progress: Annotated[bool, typer.Option(help=PROGRESS_HELP)] = True,
) -> None:
    """Build a stimulus set: images rendered as the models see them + stimuli.csv."""
    from neurocnnf.data import DataIntegrityError, DataNotFoundError
    from neurocnnf.io import WriteError
    from neurocnnf.lock import LockError
    from neurocnnf.stimuli import StimulusError, load_stimuli, write_folder

    _writable(out)
    try:
        stimulus_set = _perturbed_set(load_stimuli(spec), perturb)
        csv = write_folder(stimulus_set, out, channels, size, progress=progress)
    except (StimulusError, DataNotFoundError, DataIntegrityError, ValueError, LockError,
            WriteError) as error:
        _fail(error)
    typer.echo(f"wrote {len(stimulus_set)} stimuli: {csv}")


def _names(text: str) -> tuple[str, ...]:
    """'pgd, apgd-ce' -> ('pgd', 'apgd-ce'): comma-separated names, blanks dropped."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _numbers(text: str, option: str, kind: type = float) -> tuple:
    """'0.1,0.2' -> (0.1, 0.2) as ``kind`` (float or int); exit 2 naming the option if not."""
    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        _fail(ValueError(f"{option} {text!r}: expected comma-separated "
                         f"{'integers' if kind is int else 'numbers'}"))


@app.command()
def evaluate(
    checkpoints: Annotated[list[Path], typer.Argument(help="the CNN-F models: " + MODEL_HELP)],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/robustness"),
    twin: Annotated[list[Path], typer.Option(
        help="plain-CNN twin(s), " + MODEL_HELP + ": CNN row and transfer source; one per "
             "checkpoint for several seeds")]
    = [],  # noqa: B006
    dataset: Annotated[str, typer.Option(help="test set: fashion_mnist or cifar10")]
    = "fashion_mnist",
    limit: Annotated[int | None, typer.Option(help="first N test images")] = 1000,
    eps: Annotated[float, typer.Option(help="eps of the table (pixel scale)")] = 0.1,
    eps_grid: Annotated[str, typer.Option(help="eps values of the curves")] = "0.02,0.05,0.1,0.2",
    attacks: Annotated[str, typer.Option(help=ATTACKS_HELP)]
    = "fgsm,pgd,spsa,transfer",
    pgd_steps: Annotated[int, typer.Option(help="PGD (and transfer) steps")] = 40,
    spsa_steps: Annotated[int, typer.Option(help="SPSA steps")] = 20,
    test_iterations: Annotated[str, typer.Option(help="e.g. 0,1,2,3,4,5 (Fig. 5d)")] = "",
    batch_size: Annotated[int, typer.Option(help="images per attack batch")] = ATTACK_BATCH,
    seed: Annotated[int, typer.Option(help="seed of the attacks' random starts")] = 0,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    progress: Annotated[bool, typer.Option(help=PROGRESS_HELP)] = True,
    scorings: Annotated[str, typer.Option(help="CNN-F's scored logits: last,avg,first; e2e "
                                          "attacks run once per scoring")] = "last,avg",
) -> None:
    """Robustness of CNN-F checkpoints: the paper's table, Fig. 5 curves, masking report.

    A killed run resumes: rerun the same command to reuse the models it finished.
    """
    from neurocnnf.data import DataIntegrityError, DataNotFoundError
    from neurocnnf.io import WriteError
    from neurocnnf.lock import LockError
    from neurocnnf.train import CheckpointError

    grid = _numbers(eps_grid, "--eps-grid")
    iterations = _numbers(test_iterations, "--test-iterations", int)
    try:
        from neurocnnf.pipelines.robustness import run_evaluation

        run_evaluation(
            checkpoints, out, twin, dataset, limit, eps, grid,
            _names(attacks), pgd_steps, spsa_steps, iterations, batch_size, seed,
            _device(device), progress, _names(scorings))
    except (CheckpointError, DataNotFoundError, DataIntegrityError, ValueError,
            ImportError, LockError, WriteError) as error:
        _fail(error)
    typer.echo(f"wrote {out}")


brainscore_app = typer.Typer(help="Brain-Score: export a plugin, score a model.",
                             no_args_is_help=True)
app.add_typer(brainscore_app, name="brainscore")


@brainscore_app.command("export")
def brainscore_export(
    checkpoint: Annotated[Path, typer.Argument(help=MODEL_HELP)],
    folder: Annotated[Path | None, typer.Argument(
        help="the plugins folder (the same as --out)", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        help="folder to write the plugin into (models/<identifier>/)")] = None,
    weights_url: Annotated[str | None, typer.Option(
        help="where the checkpoint file is published: downloaded once now and checked against "
             "the checkpoint's sha256; without it (or with a file://, loopback or "
             "private-network URL) the plugin is local only, not submittable")] = None,
    weights_sha256: Annotated[str | None, typer.Option(
        help="the published file's sha256, checked against the checkpoint")] = None,
    verify_weights: Annotated[bool, typer.Option(
        help="download --weights-url once and check it (--no-verify-weights: skip; the "
             "plugin is then 'not verified')")] = True,
    metadata: Annotated[bool, typer.Option(
        help="write metadata.yml (schema 2.0); a pull request with one needs a maintainer's "
             "review, without one Brain-Score generates it after the merge")] = True,
    time_mode: Annotated[str, typer.Option(
        help="the plugin's default answer to a time bin: overlap or nearest")] = "overlap",
    package_url: Annotated[str | None, typer.Option(
        help="depend on `neurocnnf @ URL` (e.g. git+https://...) instead of carrying a "
             "generated copy of the inference code")] = None,
    iterations: Annotated[int | None, typer.Option(
        help="T the plugin runs (default: the model's)")] = None,
) -> None:
    """Write a brain-score/vision plugin folder (models/<identifier>/) for a checkpoint."""
    out = _out(folder, out)
    _writable(out)
    from neurocnnf.brainscore.export import EXPORT_RECORD, export_plugin
    from neurocnnf.brainscore.vendor import VendorError
    from neurocnnf.data.download import file_digest
    from neurocnnf.train import CheckpointError
    from neurocnnf.train.checkpoint import resolve_checkpoint

    try:
        if weights_sha256 is not None:
            if weights_url is None:
                raise ValueError("--weights-sha256 goes with --weights-url")
            actual = file_digest(resolve_checkpoint(checkpoint))
            if weights_sha256.lower() != actual:
                raise ValueError(f"--weights-sha256 {weights_sha256} is not the checkpoint's "
                                 f"sha256 {actual}: publish this checkpoint file")
        folder = export_plugin(checkpoint, out, weights_url=weights_url, iterations=iterations,
                               package_url=package_url, verify_weights=verify_weights,
                               time_mode=time_mode, metadata=metadata)
    except (CheckpointError, VendorError, ValueError) as error:
        _fail(error)
    typer.echo(f"wrote {folder}")
    typer.echo(json.loads((folder / EXPORT_RECORD).read_text())["status"])


@brainscore_app.command("export-benchmarks")
def brainscore_export_benchmarks(
    folder: Annotated[Path | None, typer.Argument(
        help="the benchmarks folder (the same as --out)", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        help="folder to write the benchmark plugin into")] = None,
) -> None:
    """Write the Algonauts 2019 RDM benchmark plugin (benchmarks/<name>/ of brain-score/vision:
    92 and 78 images, EVC and IT, 15 subjects; ids like Algonauts2019.92-IT-rdm)."""
    out = _out(folder, out)
    from neurocnnf.brainscore.benchmark_export import export_benchmarks
    from neurocnnf.brainscore.rdm_benchmark import BENCHMARKS
    from neurocnnf.brainscore.vendor import VendorError

    try:
        folder = export_benchmarks(out)
    except (VendorError, OSError) as error:
        _fail(error)
    typer.echo(f"wrote {folder}: {', '.join(BENCHMARKS)}")


@brainscore_app.command("score")
def brainscore_score(
    checkpoint: Annotated[Path, typer.Argument(help=MODEL_HELP)],
    target: Annotated[str, typer.Argument(help="benchmark id (MajajHong2015public.IT-pls) or "
                                          "a NeuroidAssembly NetCDF file")],
    region: Annotated[str, typer.Option(help="brain region the model commits a layer to: "
                                          "V1, V2, V4 or IT")] = "IT",
    iterations: Annotated[int | None, typer.Option(
        help="T the model runs (default: the model's)")] = None,
    time_mode: Annotated[str, typer.Option(
        help="how a time bin is answered: overlap (iterations weighted by their overlap "
             "with the bin) or nearest (the iteration starting nearest)")] = "overlap",
    all_layers: Annotated[bool, typer.Option(help="score every layer x iteration (local)")]
    = False,
    out: Annotated[Path | None, typer.Option(help="CSV of the scores")] = None,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
) -> None:
    """Score a checkpoint on a public benchmark, or offline on a local assembly.

    A local assembly is scored in each of its own time bins: raw (median r), ceiling and
    explained_variance = raw^2 / ceiling (Brain-Score's convention since January 2026).
    """
    from neurocnnf.brainscore.commitment import make_brain_model
    from neurocnnf.brainscore.export import plugin_identifier
    from neurocnnf.brainscore.scoring import (
        ScoringError,
        layer_scores,
        load_assembly,
        score_benchmark,
        score_time_bins,
    )
    from neurocnnf.train import CheckpointError, load_model
    from neurocnnf.train.checkpoint import resolve_checkpoint

    where = _device(device)
    try:
        path = resolve_checkpoint(checkpoint)
        model = load_model(path, map_location=where)
        steps = model.iterations if iterations is None else iterations
        identifier = plugin_identifier(path, steps, model.config["arch"])
        if Path(target).suffix in (".nc", ".netcdf"):
            assembly, stimuli = load_assembly(target)
            if all_layers:
                table = layer_scores(model, identifier, assembly, stimuli, region, steps,
                                     device=where)
            else:
                import pandas as pd

                brain_model = make_brain_model(model, identifier, time_mode=time_mode,
                                               iterations=steps, device=where)
                table = pd.DataFrame([result.__dict__ for result in score_time_bins(
                    brain_model, assembly, stimuli, region)])
            typer.echo(table.to_string(index=False))
            if out:
                table.to_csv(out, index=False)
        else:
            brain_model = make_brain_model(model, identifier, time_mode=time_mode,
                                           iterations=steps, device=where)
            result = score_benchmark(brain_model, target)
            typer.echo(f"{target}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items()
                                                 if v is not None))
    except (CheckpointError, ScoringError, ValueError) as error:
        _fail(error)


analyze_app = typer.Typer(help="Analyses of activation stores (tables + figures).",
                          no_args_is_help=True)
app.add_typer(analyze_app, name="analyze")


@analyze_app.command("rsa")
def analyze_rsa(
    activations: Annotated[Path, typer.Argument(help="store of the kriegeskorte92 stimuli")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/rsa"),
    method: Annotated[str, typer.Option(
        help="RDM comparison (rsatoolbox's names): spearman, tau-a (Kendall's tau-a) or corr "
             "(Pearson)")] = "spearman",
    n_boot: Annotated[int, typer.Option(help="bootstrap samples of the stimuli")] = 100,
) -> None:
    """RSA of every layer x iteration with macaque and human IT, CKA across iterations."""
    from neurocnnf.activations import StoreError
    from neurocnnf.analysis.rsa import check_method
    from neurocnnf.data import DataNotFoundError
    from neurocnnf.pipelines.rsa import run_rsa

    _writable(out)
    try:
        table = run_rsa(activations, out, check_method(method), n_boot)
    except (StoreError, DataNotFoundError, ValueError) as error:
        _fail(error)
    best = table.loc[table.groupby("target")["similarity"].idxmax()]
    typer.echo(best.to_string(index=False))
    typer.echo(f"wrote {out}")


@analyze_app.command("difficulty")
def analyze_difficulty(
    activations: Annotated[Path, typer.Argument(help="store of labelled, perturbed stimuli")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/difficulty"),
    tolerance: Annotated[float, typer.Option(
        help="relative change below which an image counts as settled")] = 0.05,
) -> None:
    """Iterations to self-consistency and accuracy gain against perturbation level."""
    from neurocnnf.activations import StoreError
    from neurocnnf.pipelines.difficulty import run_difficulty

    _writable(out)
    try:
        summary = run_difficulty(activations, out, tolerance)
    except (StoreError, ValueError) as error:
        _fail(error)
    typer.echo(json.dumps(summary, indent=2, default=float))


@analyze_app.command("predictive-coding")
def analyze_predictive_coding(
    model: Annotated[list[str], typer.Option(
        help="NAME=MODEL with MODEL a " + MODEL_HELP + ", repeated (e.g. CNN-F=runs/cnnf "
             "PC=runs/pc CNN=runs/cnn)")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/predictive_coding"),
    images: Annotated[str, typer.Option(help="labelled stimulus set: dataset:split:N")]
    = "fashion_mnist:test:1000",
    noise: Annotated[str, typer.Option(help="noise sigmas, comma-separated")] = "0,0.1,0.2,0.4",
    iterations: Annotated[int, typer.Option(help="iterations every model runs")] = 5,
    batch_size: Annotated[int, typer.Option(help="images per model call")] = FORWARD_BATCH,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    progress: Annotated[bool, typer.Option(help=PROGRESS_HELP)] = True,
) -> None:
    """CNN-F vs predictive coding vs feedforward: prediction error, representational change,
    noisy-vs-clean distance and accuracy per iteration, with feedback zeroed / shuffled."""
    from neurocnnf.pipelines.predictive_coding import run_predictive_coding
    from neurocnnf.stimuli import StimulusError
    from neurocnnf.train import CheckpointError

    _writable(out)
    checkpoints = {name: Path(path) for name, path in _named_models(model).items()}
    try:
        summary = run_predictive_coding(checkpoints, out, images, _numbers(noise, "--noise"),
                                        iterations, batch_size, progress, device=_device(device))
    except (CheckpointError, StimulusError, ValueError, FileNotFoundError) as error:
        _fail(error)
    typer.echo(json.dumps(summary, indent=2))


def _named_models(items: list[str]) -> dict[str, str]:
    """--model NAME=CHECKPOINT items as {name: checkpoint} (exit 2 on a malformed one)."""
    named = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            _fail(ValueError(f"--model {item!r} must look like NAME=CHECKPOINT"))
        named[name] = path
    return named


@analyze_app.command("neural")
def analyze_neural(
    model: Annotated[list[str], typer.Option(
        help="NAME=CHECKPOINT (file, run folder or pretrained:NAME), repeated; the first is "
             "the focus of the model comparison (e.g. CNN-F=pretrained:cifar10-cnnf1 "
             "CNN=pretrained:cifar10-cnn)")],
    dataset: Annotated[list[str], typer.Option(
        help="algonauts92, algonauts78, kriegeskorte92 or judgements92, repeated; the "
             "commitment is chosen on algonauts92 and reported on the others")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/neural"),
    commitment: Annotated[Path | None, typer.Option(
        help="commitment.json of an earlier run (instead of choosing on algonauts92)")] = None,
    method: Annotated[str, typer.Option(
        help="RDM comparison: spearman or corr (rsatoolbox's names)")] = "spearman",
    n_boot: Annotated[int, typer.Option(help="dual-bootstrap samples")] = 300,
    iterations: Annotated[int, typer.Option(
        help="iterations to run models with feedback (a model trained with 0 runs 0)")] = 5,
    seed: Annotated[int, typer.Option(help="seed of the bootstrap")] = 0,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
) -> None:
    """Every model x layer (forward, feedback) x iteration against every subject's RDM of real
    brain data (fMRI EVC/IT, macaque IT, judgements): noise ceilings, dual bootstrap over
    subjects and stimuli, FDR-corrected tests of iterations, models, hierarchy and feedback."""
    from neurocnnf.analysis.rsa import check_method
    from neurocnnf.data import DataIntegrityError, DataNotFoundError
    from neurocnnf.pipelines.neural import run_neural
    from neurocnnf.train import CheckpointError

    _writable(out)
    models = _named_models(model)
    try:
        summary = run_neural(models, list(dataset), out, check_method(method), n_boot,
                             iterations, commitment_file=commitment, seed=seed,
                             device=_device(device))
    except (CheckpointError, DataNotFoundError, DataIntegrityError, ValueError,
            FileNotFoundError) as error:
        _fail(error)
    typer.echo(json.dumps(summary["commitment"], indent=2))
    typer.echo(f"wrote {out}")


@analyze_app.command("human-uncertainty")
def analyze_human_uncertainty(
    model: Annotated[list[str], typer.Option(
        help="NAME=CHECKPOINT of a CIFAR-10 model (" + MODEL_HELP + "), repeated; the first "
             "is compared with the others (e.g. CNN-F=pretrained:cifar10-cnnf1 "
             "CNN=pretrained:cifar10-cnn)")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/human_uncertainty"),
    iterations: Annotated[int, typer.Option(
        help="iterations to run models with feedback (a model trained with 0 runs 0)")] = 5,
    tolerance: Annotated[float, typer.Option(
        help="relative logit change below which an image has settled / halts")] = 0.05,
    n_images: Annotated[int | None, typer.Option(
        help="a seeded random subset of the 10,000 test images (default: all)")] = None,
    n_boot: Annotated[int, typer.Option(help="bootstrap samples over images")] = 1000,
    seed: Annotated[int, typer.Option(help="seed of the image subset and the bootstrap")] = 0,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
) -> None:
    """CIFAR-10H: human label entropy against each model's settling and halting iteration;
    per iteration, cross-entropy to the human distribution and top-1 agreement on disputed
    images, with image-bootstrap intervals (the first model against the others)."""
    from neurocnnf.data import DataIntegrityError, DataNotFoundError
    from neurocnnf.pipelines.human_uncertainty import run_human_uncertainty
    from neurocnnf.train import CheckpointError

    _writable(out)
    try:
        summary = run_human_uncertainty(_named_models(model), out, iterations, tolerance,
                                        n_images, n_boot, seed, device=_device(device))
    except (CheckpointError, DataNotFoundError, DataIntegrityError, ValueError,
            FileNotFoundError) as error:
        _fail(error)
    typer.echo(json.dumps(summary["entropy_vs_iteration"], indent=2, default=float))
    typer.echo(f"wrote {out}")


@app.command()
def visualize(
    checkpoint: Annotated[Path, typer.Argument(help=MODEL_HELP)],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/figure6"),
    dataset: Annotated[str, typer.Option(help="test set: fashion_mnist or cifar10")]
    = "fashion_mnist",
    layer: Annotated[str | None, typer.Option(help="Grad-CAM layer (default: first body tap)")]
    = None,
    n_show: Annotated[int, typer.Option(help="images drawn in the figures")] = 4,
    n_stats: Annotated[int, typer.Option(help="images the statistics average over")] = 200,
    eps: Annotated[float, typer.Option(help="eps of the PGD example (pixel scale)")] = 0.1,
    seed: Annotated[int, typer.Option(help="seed of the noise and the attack")] = 0,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
) -> None:
    """Fig. 6: restoration over iterations, decision cells, Grad-CAM per iteration."""
    from neurocnnf.data import DataNotFoundError
    from neurocnnf.pipelines.figure6 import run_figure6
    from neurocnnf.train import CheckpointError, load_model

    _writable(out)
    where = _device(device)
    try:
        written = run_figure6(load_model(checkpoint, map_location=where), out, dataset, n_show,
                              n_stats, layer, eps, seed)
    except (CheckpointError, DataNotFoundError, ValueError) as error:
        _fail(error)
    typer.echo((out / "summary.txt").read_text())
    typer.echo("wrote " + ", ".join(str(p) for p in written.values()))


@app.command()
def data(
    names: Annotated[list[str], typer.Argument(help="fashion_mnist, cifar10, kriegeskorte92")],
    out: Annotated[Path | None, typer.Option(help="write the manifest (JSON) here")] = None,
    root: Annotated[Path | None, typer.Option(help="data root (default: search order)")] = None,
) -> None:
    """Find or download and verify datasets; print (or write) their manifest."""
    from neurocnnf.data import DataIntegrityError, DataNotFoundError, prepare
    from neurocnnf.io import atomic_write

    if out is not None:
        _writable(out.parent)
    try:
        manifest = json.dumps(prepare(names, root), indent=2)
    except (DataNotFoundError, DataIntegrityError, ValueError) as error:
        _fail(error)
    if out is None:
        typer.echo(manifest)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda tmp: Path(tmp).write_text(manifest + "\n"))
        typer.echo(f"wrote {out}")


@app.command()
def presets() -> None:
    """List the training presets."""
    from neurocnnf.train import available_presets

    typer.echo("\n".join(available_presets()))


@app.command()
def info(checkpoint: Annotated[Path, typer.Argument(help=MODEL_HELP)]) -> None:
    """Print a checkpoint's metadata (architecture, config, epoch, metrics)."""
    from neurocnnf.train import CheckpointError, read_metadata

    try:
        typer.echo(json.dumps(read_metadata(checkpoint), indent=2))
    except CheckpointError as error:
        _fail(error)


pretrained_app = typer.Typer(help="Trained models shipped with the package (model cards).",
                             no_args_is_help=True)
app.add_typer(pretrained_app, name="pretrained")


@pretrained_app.command("list")
def pretrained_list() -> None:
    """One line per model: name, architecture, iterations, clean and PGD-40 accuracy."""
    from neurocnnf import pretrained

    for name in pretrained.list():
        card = pretrained.card(name)
        clean = card["accuracy"]["test_full"]["acc_last"]
        robust = card["robustness"].get("pgd40_eps0.1_worst")
        robust_text = "" if robust is None else f"  PGD-40 eps 0.1: {robust:.1%}"
        typer.echo(f"{name:24s} {card['arch']:12s} T={card['iterations']}  "
                   f"clean {clean:.1%}{robust_text}  {card['description']}")


@pretrained_app.command("info")
def pretrained_info(
    name: Annotated[str, typer.Argument(help="a shipped model (neurocnnf pretrained list)")],
) -> None:
    """Print a model's card (JSON)."""
    from neurocnnf import pretrained
    from neurocnnf.train import CheckpointError

    try:
        typer.echo(json.dumps(pretrained.card(name), indent=2))
    except CheckpointError as error:
        _fail(error)


@pretrained_app.command("export")
def pretrained_export(
    name: Annotated[str, typer.Argument(help="a shipped model (neurocnnf pretrained list)")],
    folder: Annotated[Path | None, typer.Argument(help="the run folder (or --out)")] = None,
    out: Annotated[Path | None, typer.Option(
        help="folder to write: best.safetensors, card.json and results.json (the card's test "
             "accuracy), a run folder every command takes")] = None,
) -> None:
    """Write a model as a run folder (every command takes it; or pass `pretrained:NAME`)."""
    import shutil

    from neurocnnf import pretrained
    from neurocnnf.io import WriteError, atomic_write
    from neurocnnf.train import CheckpointError

    out = out or folder
    if out is None:
        _fail(ValueError("pretrained export needs the folder to write: --out FOLDER"))
    _writable(out)
    try:
        weights = pretrained.path(name)
        card = pretrained.card(name)
        atomic_write(out / "best.safetensors", lambda tmp: shutil.copyfile(weights, tmp))
        atomic_write(out / "card.json", lambda tmp: Path(tmp).write_text(
            json.dumps(card, indent=2) + "\n"))
        results = {"name": name, "pretrained": True, "best_epoch":
                   card["schedule"].get("best_epoch"), "test": card["accuracy"]["test_full"],
                   "iterations": card["iterations"], "checkpoint": str(out / "best.safetensors")}
        atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(
            json.dumps(results, indent=2) + "\n"))
    except (CheckpointError, WriteError) as error:
        _fail(error)
    typer.echo(f"{name} -> {out}")


workflow_app = typer.Typer(help="The Snakemake workflow shipped with the package.",
                           no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")


@workflow_app.command("init")
def workflow_init(
    folder: Annotated[Path | None, typer.Argument(
        help="folder to write (the same as --out)", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        help="folder to write: workflow/, config/ and .test/ as the Snakemake workflow "
             "template lays them out")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a workflow already in OUT")] = False,
) -> None:
    """Copy the workflow (Snakefile, rules, schemas, configs, profiles) into a folder; then
    `cd OUT && snakemake` runs the quickstart (`-n` for a dry run)."""
    from neurocnnf.workflow import WorkflowError, init

    target = _out(folder, out)
    _writable(target)
    try:
        init(target, overwrite=overwrite)
    except (WorkflowError, OSError) as error:
        _fail(error)
    typer.echo(f"wrote {target}: cd {target} && snakemake -n (dry run), then snakemake")


def _out(positional: Path | None, option: Path | None) -> Path:
    """The output of a command taking it as --out or (the older form) as an argument."""
    if positional is not None and option is not None and positional != option:
        _fail(ValueError(f"two outputs given: {positional} and --out {option}; give one"))
    if positional is None and option is None:
        _fail(ValueError("no output given: pass --out PATH"))
    return option or positional


def main() -> None:
    """The ``neurocnnf`` entry point: the command line only ever saves figures (Agg backend,
    set here rather than on import, so that importing this module leaves notebooks alone)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        app()
    except ModuleNotFoundError as error:  # a package of an extra that is not installed
        from neurocnnf.extras import missing_extra_message

        message = missing_extra_message(error)
        if message is None:
            raise
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
