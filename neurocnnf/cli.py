"""The ``neurocnnf`` command line (typer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="CNN-F for computational neuroscience and robustness research.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


def _fail(error: Exception) -> None:
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def train(
    preset: Annotated[str, typer.Argument(help="preset name (see `neurocnnf presets`) or YAML")],
    out: Annotated[Path, typer.Option(help="run folder")] = Path("runs/run"),
    set_: Annotated[list[str], typer.Option("--set", help="override, e.g. optim.lr=0.01")] = [],  # noqa: B006
    resume: Annotated[bool, typer.Option(help="continue an interrupted run in OUT")] = False,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, mps")] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Train a CNN-F (or its plain-CNN twin) and score the test set once at the end."""
    from neurocnnf.data import DataIntegrityError, DataNotFoundError
    from neurocnnf.train import CheckpointError, ConfigError, load_config
    from neurocnnf.train import train as run_training

    overrides = list(set_) + ([f"device={device}"] if device else [])
    try:
        config = load_config(preset, overrides)
        typer.echo(f"training {config.name} -> {out}")
        results = run_training(config, out, resume=resume, progress=progress)
    except (ConfigError, CheckpointError, DataNotFoundError, DataIntegrityError) as error:
        _fail(error)
    if results:  # empty on the non-main ranks of a torchrun job
        typer.echo(json.dumps(results["test"], indent=2))


@app.command()
def presets() -> None:
    """List the training presets."""
    from neurocnnf.train import available_presets

    typer.echo("\n".join(available_presets()))


@app.command()
def info(checkpoint: Path) -> None:
    """Print a checkpoint's metadata (architecture, config, epoch, metrics)."""
    from neurocnnf.train import CheckpointError, read_metadata

    try:
        typer.echo(json.dumps(read_metadata(checkpoint), indent=2))
    except CheckpointError as error:
        _fail(error)


if __name__ == "__main__":
    app()
