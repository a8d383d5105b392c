"""The root of the ``neurocnnf`` command line: the app, its error handling, the top-level
commands (train, extract, stimuli, evaluate, visualize, data, presets, info) and the sub-apps,
one module each (``cli/brainscore.py``, ``analyze.py``, ``pretrained.py``, ``workflow.py``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from neurocnnf.allocator import keep_freed_memory
from neurocnnf.cli import analyze, brainscore, pretrained, workflow
from neurocnnf.cli.options import (
    ATTACK_BATCH,
    ATTACKS_HELP,
    DEVICE_HELP,
    FORWARD_BATCH,
    LAYERS_HELP,
    MODEL_HELP,
    PROGRESS_HELP,
    STIMULI_HELP,
    check_writable,
    device_name,
    split_names,
    split_numbers,
)
from neurocnnf.errors import NeurocnnfError

# what a command may fail with for a reason the user can act on: the package's own errors, the
# plain ValueErrors of bad arguments, files that cannot be read or written, a diverged training
USER_ERRORS = (NeurocnnfError, ValueError, OSError, FloatingPointError)


class _Commands(TyperGroup):
    """The app's command group: any command (of any sub-app) failing with one of USER_ERRORS
    prints ``error: <message>`` on one line and exits 2; anything else is a bug (traceback)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as error:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None


app = typer.Typer(cls=_Commands, no_args_is_help=True, pretty_exceptions_enable=False)


def _print_version(value: bool) -> None:
    if value:
        from neurocnnf.version import __version__

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
    keep_freed_memory()  # each command is one long job (neurocnnf.allocator)


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
    from neurocnnf.train import load_config
    from neurocnnf.train import train as run_training

    overrides = list(set_) + ([f"device={device}"] if device else [])
    config = load_config(preset, overrides)
    device_name(config.device)
    check_writable(out)
    typer.echo(f"training {config.name} -> {out}")
    results = run_training(config, out, resume=resume, progress=progress,
                           restart_if_changed=restart_if_changed, overwrite=overwrite)
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
        "--compile", help="torch.compile the model's iterations (the first batch compiles, "
        "cached across runs); on a CPU extraction gained nothing from it, of every layer or of "
        "two (benchmarks/README.md, 'Compiled extraction')")] = False,
    shard: Annotated[str | None, typer.Option(
        help="spread one .zarr extraction over jobs: 'init' creates the store, 'I/N' (I from 0, "
        "e.g. $SLURM_ARRAY_TASK_ID/N) writes shard I of N (resumable), 'merge' finishes the "
        "store once every shard is done")] = None,
    bf16: Annotated[bool, typer.Option(
        "--bf16", help="run the model under bfloat16 autocast (CUDA or CPU; faster where the "
        "hardware has bfloat16 units, activations within about 1e-2 of float32)")] = False,
) -> None:
    """Per-iteration activations of every layer for a stimulus set, as an xarray store."""
    from neurocnnf.activations import Reduce, TimeBins, parse_shard
    from neurocnnf.activations import extract as run_extraction
    from neurocnnf.data.download import file_digest
    from neurocnnf.pretrained import model_name
    from neurocnnf.stimuli import load_stimuli
    from neurocnnf.train import load_model
    from neurocnnf.train.checkpoint import resolve_checkpoint

    shard_mode = parse_shard(shard) if shard else None
    model = load_model(checkpoint, map_location=device_name(device))
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
        restart_if_changed=restart_if_changed, dtype=dtype, shard=shard_mode, bf16=bf16)
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
        levels = split_numbers(levels, f"--perturb {kind}", float)
        stimulus_set = perturb(stimulus_set, kind, levels)
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
    from neurocnnf.stimuli import load_stimuli, write_folder

    check_writable(out)
    stimulus_set = _perturbed_set(load_stimuli(spec), perturb)
    csv = write_folder(stimulus_set, out, channels, size, progress=progress)
    typer.echo(f"wrote {len(stimulus_set)} stimuli: {csv}")


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

    grid = split_numbers(eps_grid, "--eps-grid")
    iterations = split_numbers(test_iterations, "--test-iterations", int)
    from neurocnnf.pipelines.robustness import run_evaluation

    run_evaluation(
        checkpoints, out, twin, dataset, limit, eps, grid,
        split_names(attacks), pgd_steps, spsa_steps, iterations, batch_size, seed,
        device_name(device), progress, split_names(scorings))
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
    from neurocnnf.pipelines.figure6 import run_figure6
    from neurocnnf.pipelines.layout import Figure6Files
    from neurocnnf.train import load_model

    check_writable(out)
    where = device_name(device)
    written = run_figure6(load_model(checkpoint, map_location=where), out, dataset, n_show,
                          n_stats, layer, eps, seed)
    typer.echo(Figure6Files(out).summary.read_text())
    typer.echo("wrote " + ", ".join(str(p) for p in written.values()))


@app.command()
def data(
    names: Annotated[list[str], typer.Argument(help="fashion_mnist, cifar10, kriegeskorte92")],
    out: Annotated[Path | None, typer.Option(help="write the manifest (JSON) here")] = None,
    root: Annotated[Path | None, typer.Option(help="data root (default: search order)")] = None,
) -> None:
    """Find or download and verify datasets; print (or write) their manifest."""
    from neurocnnf.data import prepare
    from neurocnnf.io import atomic_write

    if out is not None:
        check_writable(out.parent)
    manifest = json.dumps(prepare(names, root), indent=2)
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
    from neurocnnf.train import read_metadata

    typer.echo(json.dumps(read_metadata(checkpoint), indent=2))


app.add_typer(brainscore.app, name="brainscore")
app.add_typer(analyze.app, name="analyze")
app.add_typer(pretrained.app, name="pretrained")
app.add_typer(workflow.app, name="workflow")


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
