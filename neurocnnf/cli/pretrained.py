"""``neurocnnf pretrained``: the trained models shipped with the package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from neurocnnf.cli.options import (
    check_writable,
)

app = typer.Typer(help="Trained models shipped with the package (model cards).",
                  no_args_is_help=True)


@app.command("list")
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


@app.command("info")
def pretrained_info(
    name: Annotated[str, typer.Argument(help="a shipped model (neurocnnf pretrained list)")],
) -> None:
    """Print a model's card (JSON)."""
    from neurocnnf import pretrained

    typer.echo(json.dumps(pretrained.card(name), indent=2))


@app.command("export")
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
    from neurocnnf.io import atomic_write

    out = out or folder
    if out is None:
        raise ValueError("pretrained export needs the folder to write: --out FOLDER")
    check_writable(out)
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
    typer.echo(f"{name} -> {out}")
