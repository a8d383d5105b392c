"""``neurocnnf workflow``: copy out the Snakemake workflow shipped with the package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurocnnf.cli.options import (
    check_writable,
    one_output,
)

app = typer.Typer(help="The Snakemake workflow shipped with the package.", no_args_is_help=True)


@app.command("init")
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
    from neurocnnf.workflow import init

    target = one_output(folder, out)
    check_writable(target)
    init(target, overwrite=overwrite)
    typer.echo(f"wrote {target}: cd {target} && snakemake -n (dry run), then snakemake")
