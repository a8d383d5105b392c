"""``neurocnnf analyze``: the analyses of activation stores and models (tables + figures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from neurocnnf.cli.options import (
    DEVICE_HELP,
    FORWARD_BATCH,
    MODEL_HELP,
    PROGRESS_HELP,
    check_writable,
    device_name,
    split_numbers,
)

app = typer.Typer(help="Analyses of activation stores (tables + figures).", no_args_is_help=True)


@app.command("difficulty")
def analyze_difficulty(
    activations: Annotated[Path, typer.Argument(help="store of labelled, perturbed stimuli")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/difficulty"),
    tolerance: Annotated[float, typer.Option(
        help="relative change below which an image counts as settled")] = 0.05,
) -> None:
    """Iterations to self-consistency and accuracy gain against perturbation level."""
    from neurocnnf.pipelines.difficulty import run_difficulty

    check_writable(out)
    summary = run_difficulty(activations, out, tolerance)
    typer.echo(json.dumps(summary, indent=2, default=float))


@app.command("predictive-coding")
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

    check_writable(out)
    checkpoints = {name: Path(path) for name, path in _named_models(model).items()}
    summary = run_predictive_coding(checkpoints, out, images, split_numbers(noise, "--noise"),
                                    iterations, batch_size, progress, device=device_name(device))
    typer.echo(json.dumps(summary, indent=2))


def _named_models(items: list[str]) -> dict[str, str]:
    """--model NAME=CHECKPOINT items as {name: checkpoint} (exit 2 on a malformed one)."""
    named = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--model {item!r} must look like NAME=CHECKPOINT")
        named[name] = path
    return named


@app.command("neural")
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
    subjects and stimuli, FDR-corrected tests of iterations, models, hierarchy and feedback,
    RDM panels, and each model's CKA across iterations."""
    from neurocnnf.analysis.rsa import check_method
    from neurocnnf.pipelines.neural import run_neural

    check_writable(out)
    models = _named_models(model)
    summary = run_neural(models, list(dataset), out, check_method(method), n_boot,
                         iterations, commitment_file=commitment, seed=seed,
                         device=device_name(device))
    typer.echo(json.dumps(summary["commitment"], indent=2))
    typer.echo(f"wrote {out}")


@app.command("human-uncertainty")
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
    from neurocnnf.pipelines.human_uncertainty import run_human_uncertainty

    check_writable(out)
    summary = run_human_uncertainty(_named_models(model), out, iterations, tolerance,
                                    n_images, n_boot, seed, device=device_name(device))
    typer.echo(json.dumps(summary["entropy_vs_iteration"], indent=2, default=float))
    typer.echo(f"wrote {out}")
