"""The evaluation protocol behind ``neurocnnf evaluate``: which attacks to run, on which models,
and the files it writes (results.csv/.nc, table.md, report.txt, figures/*.png)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from neurocnnf.attacks.evaluate import (
    AttackSpec,
    evaluate,
    format_report,
    markdown,
    masking_report,
    paper_table,
)
from neurocnnf.data import load_dataset


def attack_plan(eps: float, eps_grid: list[float], attacks: list[str], pgd_steps: int = 40,
                spsa_steps: int = 20, large_eps: float = 0.5) -> list[AttackSpec]:
    """Clean; FGSM and PGD-k (first) over ``eps_grid``; at ``eps``: PGD-k first and e2e, PGD
    with k/4 steps (the more-steps check), and the requested extra attacks on both targets;
    PGD at ``large_eps`` (the ~0 check)."""
    specs = [AttackSpec("clean")]
    grid = sorted(set(eps_grid) | {eps})
    for e in grid:
        if "fgsm" in attacks:
            specs.append(AttackSpec("fgsm", e, "first"))
        if "pgd" in attacks:
            specs.append(AttackSpec("pgd", e, "first", pgd_steps))
    if "pgd" in attacks:
        specs += [AttackSpec("pgd", eps, "e2e", pgd_steps),
                  AttackSpec("pgd", eps, "first", max(pgd_steps // 4, 1)),
                  AttackSpec("pgd", large_eps, "first", pgd_steps)]
    if "spsa" in attacks:
        specs += [AttackSpec("spsa", eps, "first", spsa_steps),
                  AttackSpec("spsa", eps, "e2e", spsa_steps)]
    for name in ("apgd-ce", "apgd-t", "square"):
        if name in attacks:
            specs.append(AttackSpec(name, eps, "e2e"))
    if "transfer" in attacks:
        specs.append(AttackSpec("transfer", eps, "first", pgd_steps))
    return specs


def _identity(model, path: Path) -> tuple[str, str]:
    meta = getattr(model, "checkpoint_metadata", {})
    name = f"{path.parent.name}/{path.stem}" if path.is_file() else path.name
    return name, meta.get("config", {}).get("name", path.parent.name)


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
) -> pd.DataFrame:
    """Evaluate checkpoints and their plain-CNN twins; write every output under ``out``.

    With several seeds, pass one twin per checkpoint (same order): checkpoint i takes its
    transfer examples from twin i (modulo the number of twins), and every twin is a CNN row.
    """
    from neurocnnf.train import load_model
    from neurocnnf.train.checkpoint import resolve_checkpoint
    from neurocnnf.viz import robustness as fig

    test = load_dataset(dataset, "test")
    n = len(test) if limit is None else min(limit, len(test))
    images, labels = test.images[:n].float() / 255, test.labels[:n]
    twin_models = [load_model(t, map_location=device) for t in twins]
    if not twin_models:
        attacks = tuple(a for a in attacks if a != "transfer")
    specs = attack_plan(eps, list(eps_grid), list(attacks), pgd_steps, spsa_steps)
    frames = []
    cnn_specs = [s for s in specs if s.attack != "transfer"]
    for path, twin_model in zip(twins, twin_models, strict=True):
        name, _ = _identity(twin_model, resolve_checkpoint(path))
        frames.append(evaluate(twin_model, images, labels, cnn_specs, twin=None,
                               batch_size=batch_size, seed=seed, name=name, label="CNN",
                               progress=progress))
    for index, path in enumerate(checkpoints):
        model = load_model(path, map_location=device)
        name, label = _identity(model, resolve_checkpoint(path))
        twin_model = twin_models[index % len(twin_models)] if twin_models else None
        frames.append(evaluate(model, images, labels, specs, twin=twin_model,
                               batch_size=batch_size, seed=seed, name=name, label=label,
                               progress=progress))
        for t in test_iterations:
            sweep = [s for s in specs if s.attack == "clean" or (
                s.attack == "pgd" and s.target == "first" and s.steps == pgd_steps)]
            frames.append(evaluate(model, images, labels, sweep, scorings=("last",),
                                   batch_size=batch_size, seed=seed, name=name, label=label,
                                   iterations=t, progress=progress).assign(sweep="test_iterations"))
    results = pd.concat(frames, ignore_index=True)
    if "sweep" not in results:
        results["sweep"] = ""
    results["sweep"] = results["sweep"].fillna("")
    write_outputs(results, out, eps, fig)
    return results


def write_outputs(results: pd.DataFrame, out: Path, eps: float, fig) -> None:
    """results.csv, results.nc, table.md, report.txt and figures/ under ``out``."""
    import xarray as xr

    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    xr.Dataset.from_dataframe(results.rename_axis("row")).to_netcdf(out / "results.nc",
                                                                     engine="h5netcdf")
    main = results[results["sweep"] == ""]
    table = markdown(paper_table(main, eps))
    report = format_report(masking_report(main))
    (out / "table.md").write_text(f"Accuracy (%) at eps = {eps} (pixel scale), "
                                  f"n = {int(main['n'].max())}\n\n{table}\n")
    (out / "report.txt").write_text(report + "\n")
    fig.save(fig.accuracy_vs_eps(main, "fgsm"), out / "figures" / "fig5a_fgsm.png")
    fig.save(fig.accuracy_vs_eps(main, "pgd"), out / "figures" / "fig5b_pgd.png")
    if main["trained_iterations"].nunique() > 1:
        fig.save(fig.accuracy_vs_training_iterations(main),
                 out / "figures" / "fig5c_training_iterations.png")
    sweep = results[results["sweep"] == "test_iterations"]
    if not sweep.empty:
        fig.save(fig.accuracy_vs_test_iterations(sweep),
                 out / "figures" / "fig5d_test_iterations.png")
    print(table)
    print(report)
