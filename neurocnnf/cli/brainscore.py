"""``neurocnnf brainscore``: export a plugin (or the RDM benchmarks), score a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from neurocnnf.cli.options import (
    DEVICE_HELP,
    MODEL_HELP,
    check_writable,
    device_name,
    one_output,
)

app = typer.Typer(help="Brain-Score: export a plugin, score a model.", no_args_is_help=True)


@app.command("export")
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
    out = one_output(folder, out)
    check_writable(out)
    from neurocnnf.brainscore.export import EXPORT_RECORD, export_plugin
    from neurocnnf.data.download import file_digest
    from neurocnnf.train.checkpoint import resolve_checkpoint

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
    typer.echo(f"wrote {folder}")
    typer.echo(json.loads((folder / EXPORT_RECORD).read_text())["status"])


@app.command("export-benchmarks")
def brainscore_export_benchmarks(
    folder: Annotated[Path | None, typer.Argument(
        help="the benchmarks folder (the same as --out)", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        help="folder to write the benchmark plugin into")] = None,
) -> None:
    """Write the Algonauts 2019 RDM benchmark plugin (benchmarks/<name>/ of brain-score/vision:
    92 and 78 images, EVC and IT, 15 subjects; ids like Algonauts2019.92-IT-rdm)."""
    out = one_output(folder, out)
    from neurocnnf.brainscore.benchmark_export import export_benchmarks
    from neurocnnf.brainscore.rdm_benchmark import BENCHMARKS

    folder = export_benchmarks(out)
    typer.echo(f"wrote {folder}: {', '.join(BENCHMARKS)}")


@app.command("score")
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
        layer_scores,
        load_assembly,
        score_benchmark,
        score_time_bins,
    )
    from neurocnnf.models import resolve_iterations
    from neurocnnf.train import load_model
    from neurocnnf.train.checkpoint import resolve_checkpoint

    where = device_name(device)
    path = resolve_checkpoint(checkpoint)
    model = load_model(path, map_location=where)
    iterations = resolve_iterations(model, iterations)
    identifier = plugin_identifier(path, iterations, model.config["arch"])
    if Path(target).suffix in (".nc", ".netcdf"):
        assembly, stimuli = load_assembly(target)
        if all_layers:
            table = layer_scores(model, identifier, assembly, stimuli, region, iterations,
                                 device=where)
        else:
            import pandas as pd

            brain_model = make_brain_model(model, identifier, time_mode=time_mode,
                                           iterations=iterations, device=where)
            table = pd.DataFrame([result.__dict__ for result in score_time_bins(
                brain_model, assembly, stimuli, region)])
        typer.echo(table.to_string(index=False))
        if out:
            table.to_csv(out, index=False)
    else:
        brain_model = make_brain_model(model, identifier, time_mode=time_mode,
                                       iterations=iterations, device=where)
        result = score_benchmark(brain_model, target)
        typer.echo(f"{target}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items()
                                             if v is not None))
