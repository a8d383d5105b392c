"""The one-page report of a workflow run: headline numbers, tables and figures, as Markdown and
as a self-contained HTML page (figures embedded), read from the files under <results>/<name>/
at the paths of :class:`neurocnnf.pipelines.layout.ResultsLayout`.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from neurocnnf.pipelines.layout import ResultsLayout
from neurocnnf.version import __version__


@dataclass
class Block:
    """One piece of the report: kind is 'h2', 'text', 'list', 'table', 'figure' or 'pre'."""

    kind: str
    content: object
    caption: str = ""


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def model_table(layout: ResultsLayout) -> pd.DataFrame:
    """Test accuracy (%) of every trained model and seed: first / last / avg scoring."""
    rows = []
    for path in layout.matching(layout.trained("*", "*")):
        result = json.loads(path.read_text())
        test = result["test"]
        rows.append({"model": path.parent.parent.name, "seed": path.parent.name[4:],
                     "iterations": result.get("iterations"),
                     **{k.replace("acc_", "test % "): round(100 * v, 2)
                        for k, v in test.items() if k.startswith("acc_")}})
    return pd.DataFrame(rows)


def _rho(entry: dict) -> str:
    return f"{entry['rho']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"


def difficulty_table(layout: ResultsLayout) -> pd.DataFrame:
    """Per model: Spearman rho of the settling iteration with the perturbation level and with
    first-pass uncertainty (95% bootstrap CIs), and the accuracy gain at the largest level."""
    rows = []
    for path in layout.matching(layout.difficulty_files("*").summary):
        summary = json.loads(path.read_text())
        gains = summary["accuracy_gain_by_level"]
        top = max(gains, key=float)
        rows.append({"model": path.parent.name,
                     "rho(settling, level)": _rho(summary["settling_vs_level"]),
                     "rho(settling, t=0 uncertainty)": _rho(
                         summary["settling_vs_first_pass_uncertainty"]),
                     "mean settling per level": ", ".join(
                         f"{float(k):g}: {v:.2f}" for k, v in
                         summary["mean_settling_by_level"].items()),
                     f"accuracy gain at level {float(top):g} (pp)": round(100 * gains[top], 1)})
    return pd.DataFrame(rows)


def predictive_coding_table(layout: ResultsLayout) -> pd.DataFrame:
    """Accuracy (%) at t = 0 and at the last iteration with feedback intact / zeroed /
    shuffled, per model and noise level."""
    summary = _read_json(layout.predictive_coding_files.summary).get("results", {})
    rows = []
    for model, levels in summary.items():
        for level, values in levels.items():
            if not isinstance(values, dict):
                continue
            rows.append({"model": model, "noise": level.removeprefix("noise="),
                         **{k: round(100 * v, 1) for k, v in values.items()}})
    return pd.DataFrame(rows).fillna("")  # the feedforward model has no ablation rows


def robustness_table(layout: ResultsLayout, eps: float | None = None
                     ) -> tuple[pd.DataFrame, str]:
    """Table 2's shape (rows CNN / CNN-F (last) / CNN-F (avg), accuracy % per attack and the
    minimum) from the evaluation's results.csv at ``eps`` (default: the eps at which the most
    attacks ran, the evaluation's table eps), and its caption; an empty table when there is no
    results.csv."""
    from neurocnnf.attacks.tables import paper_table

    path = layout.robustness_files.results
    if not path.exists():
        return pd.DataFrame(), ""
    results = pd.read_csv(path)
    main = results[results["sweep"].isna() | (results["sweep"] == "")]
    if eps is None:  # the table's eps: the one every attack ran at (the grid is FGSM/PGD's)
        attacked = main[main["attack"] != "clean"].astype({"target": str})
        eps = float(attacked.groupby("eps")[["attack", "target"]].value_counts()
                    .groupby(level="eps").size().idxmax())
    table = paper_table(main, eps)
    caption = f"Accuracy (%) at eps = {eps:g} (pixel scale), n = {int(main['n'].max())}"
    return table.rename_axis("model").reset_index().astype(object).fillna(""), caption


def paired_report_table(layout: ResultsLayout) -> pd.DataFrame:
    """Each CNN-F minus its twin on the same images (the evaluation's paired.csv, last logits):
    difference in pp with its 95 % interval, and McNemar's p; empty without a twin."""
    path = layout.robustness_files.paired
    if not path.exists():
        return pd.DataFrame()
    paired = pd.read_csv(path)
    paired = paired[paired["scoring"] == "last"]
    return pd.DataFrame({
        "model": paired["model"], "twin": paired["twin"],
        "attack": paired["attack"] + " " + paired["target"] + " " + paired["steps"].astype(str),
        "difference pp [95 %]": [f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]" for d, lo, hi in
                                 zip(paired["difference_pp"], paired["low_pp"],
                                     paired["high_pp"], strict=True)],
        "McNemar p": paired["mcnemar_p"].map(lambda p: f"{p:.3g}")}).reset_index(drop=True)


def headline(layout: ResultsLayout, eps: float | None = None) -> list[str]:
    """The few numbers a reader wants first (``eps``: the robustness table's, as in
    :func:`robustness_table`)."""
    robustness, _ = robustness_table(layout, eps)
    lines = []
    models = model_table(layout)
    if len(models):
        means = models.groupby("model")["test % last"].mean()
        lines.append("Test accuracy (last iteration, mean over seeds): " + ", ".join(
            f"{m} {v:.2f}%" for m, v in means.items()))
    if {"Clean", "Min"} <= set(robustness.columns):
        lines.append("Robustness (% correct, clean / worst attack): " + "; ".join(
            f"{row['model']} {row['Clean']} / {row['Min']}" for _, row in robustness.iterrows()))
    paired = paired_report_table(layout)
    worst = paired[paired["attack"].str.startswith("worst-case")] if len(paired) else paired
    for _, row in worst.iterrows():
        lines.append(f"{row['model']} minus its twin {row['twin']}, per-image worst case: "
                     f"{row['difference pp [95 %]']} pp (McNemar p {row['McNemar p']})")
    neural = _read_json(layout.neural_files.summary)
    for model, pick in neural.get("commitment", {}).get("IT", {}).items():
        lines.append(f"{model}: IT committed to {pick['layer']} at t = {pick['iteration']}, "
                     f"RSA {pick['similarity']:.3f} on {neural['chosen_on']}")
    for _, row in difficulty_table(layout).iterrows():
        lines.append(f"{row['model']}: settling iteration vs perturbation level, Spearman rho "
                     f"{row['rho(settling, level)']}")
    pc = _read_json(layout.predictive_coding_files.summary).get("results", {})
    for model, values in pc.items():
        levels = [k for k in values if k.startswith("noise=")]
        if levels and "acc_last_zero" in values[levels[-1]]:
            v = values[levels[-1]]
            lines.append(f"{model} at {levels[-1]}: accuracy t=0 {100 * v['acc_t0']:.1f}%, last "
                         f"{100 * v['acc_last_intact']:.1f}%, feedback zeroed "
                         f"{100 * v['acc_last_zero']:.1f}%, shuffled "
                         f"{100 * v['acc_last_shuffle']:.1f}%")
    return lines


def blocks(layout: ResultsLayout, config: dict | None = None) -> list[Block]:
    """The report's content, in reading order (``config``: the workflow's, when known; its
    robustness eps picks the robustness table's column)."""
    eps = config["robustness"].get("eps") if config and "robustness" in config else None
    robustness, caption = robustness_table(layout, eps)
    out = [Block("text", f"neurocnnf {__version__}, {date.today().isoformat()}, results in "
                         f"`{layout.root}`."),
           Block("h2", "Headline"), Block("list", headline(layout, eps)),
           Block("h2", "Models"), Block("table", model_table(layout))]
    if len(robustness):
        files = layout.robustness_files
        out += [Block("h2", "Robustness"), Block("table", robustness, caption)]
        out += [Block("figure", p) for p in sorted(files.figures.glob("*.png"))]
        if files.masking.exists():
            out.append(Block("pre", files.masking.read_text(), "gradient-masking checks"))
        paired = paired_report_table(layout)
        if len(paired):
            out += [Block("h2", "CNN-F minus its twin, image by image"),
                    Block("table", paired, "the same images attacked in both models; Newcombe's "
                          "interval for paired proportions, exact McNemar test")]
    sets = {p.parent.name: pd.read_csv(p) for p in layout.matching(layout.stimuli("*"))}
    if sets:
        out += [Block("h2", "Stimulus sets"), Block("table", pd.DataFrame([
            {"set": name, "stimuli": len(table), "sources": table["source_id"].nunique(),
             "perturbation levels": ", ".join(f"{table['perturbation'].iloc[0]} {v:g}"
                                              for v in sorted(table["level"].unique()))}
            for name, table in sets.items()]))]
    out += neural_blocks(layout) + human_uncertainty_blocks(layout)
    out += [Block("h2", "Recurrence versus difficulty"), Block("table", difficulty_table(layout))]
    out += [Block("figure", p, f"{p.parent.name}: settling and accuracy gain per level")
            for p in layout.matching(layout.difficulty_files("*").figure)]
    pc = layout.predictive_coding_files
    out += [Block("h2", "CNN-F vs predictive coding vs feedforward"),
            Block("table", predictive_coding_table(layout))]
    out += [Block("figure", path) for path in (pc.comparison, pc.ablations) if path.exists()]
    fig6 = layout.figure6_files
    if fig6.summary.exists():
        out += [Block("h2", "Feedback restores perturbed images (Fig. 6)"),
                Block("pre", fig6.summary.read_text())]
        out += [Block("figure", path) for path in (fig6.restoration_figure, fig6.gradcam_figure)
                if path.exists()]
    out += brainscore_blocks(layout)
    if config:
        import yaml

        out += [Block("h2", "Config"), Block("pre", yaml.safe_dump(config, sort_keys=False))]
    return out


def neural_blocks(layout: ResultsLayout) -> list[Block]:
    """``analyze neural``: the commitment, its scores on the held-out sets, the FDR-corrected
    tests of questions (1)-(4), the figures of the set the commitment was chosen on and each
    model's CKA across iterations."""
    files = layout.neural_files
    summary = _read_json(files.summary)
    if not summary:
        return []
    out = [Block("h2", "Similarity to real brain data (fMRI EVC/IT, macaque IT, judgements)")]
    commitment = pd.DataFrame([{"region": region, "model": model, **pick}
                               for region, picks in summary["commitment"].items()
                               for model, pick in picks.items()])
    out.append(Block("table", commitment.round(3), "the commitment: forward layer and "
                     "iteration with the highest mean similarity on algonauts92"))
    if files.held_out.exists():
        held = pd.read_csv(files.held_out)[
            ["dataset", "region", "model", "layer", "iteration", "similarity", "ci_low",
             "ci_high", "ceiling_low", "ceiling_high"]]
        out.append(Block("table", held.round(3), "the commitment's scores on the other sets "
                         "(mean over subjects, dual-bootstrap interval, noise ceiling)"))
    if files.tests.exists():
        tests = pd.read_csv(files.tests)[
            ["question", "dataset", "region", "comparison", "a", "b", "difference", "p",
             "significant"]]
        out.append(Block("table", tests.round(4), "pairwise t-tests on the dual bootstrap, "
                         "FDR-corrected per data set as rsatoolbox does"))
    first = summary["datasets"][0]
    out += [Block("figure", p, f"{first}: {p.stem.replace('_', ' ')}")
            for p in sorted(files.dataset(first).folder.glob("*.png"))]
    out += [Block("figure", path, f"{model}: CKA across iterations ({summary['cka_on']})")
            for model in summary["models"] if (path := files.cka_figure(model)).exists()]
    return out


def human_uncertainty_blocks(layout: ResultsLayout) -> list[Block]:
    """``analyze human-uncertainty``: entropy vs settling, and the first model's iterations
    against its baselines on cross-entropy to CIFAR-10H."""
    files = layout.human_uncertainty_files
    if not files.summary.exists():
        return []
    return [Block("h2", "Human uncertainty (CIFAR-10H)"),
            Block("table", pd.read_csv(files.entropy_vs_iteration).round(3),
                  "Spearman rho of human label entropy with each model's settling / halting "
                  "iteration (image bootstrap)"),
            Block("table", pd.read_csv(files.comparisons).round(4),
                  "paired differences over images (bootstrap interval and p)")] + [
        Block("figure", path) for path in (files.cross_entropy_figure, files.entropy_figure)
        if path.exists()]


def brainscore_blocks(layout: ResultsLayout) -> list[Block]:
    """The exported Brain-Score plugins, each submittable, not verified or local only (from
    export.json: where the weights are and whether the export verified them)."""
    from neurocnnf.brainscore.export import EXPORT_RECORD
    from neurocnnf.brainscore.publish import weights_status

    plugins = [json.loads(p.read_text())
               for p in sorted(layout.brainscore_plugins.glob(f"*/{EXPORT_RECORD}"))]
    if not plugins:
        return []
    return [Block("h2", "Brain-Score"), Block("text", "Plugin(s): " + "; ".join(
        f"`{p['identifier']}`: "
        + weights_status(p["weights_url"], p.get("weights_verified", False))[1]
        for p in plugins))]


def to_markdown(title: str, content: list[Block], base: Path) -> str:
    """Markdown with figures linked relative to ``base`` (the report's folder)."""
    lines = [f"# {title}", ""]
    for block in content:
        if block.kind == "h2":
            lines += [f"## {block.content}", ""]
        elif block.kind == "text":
            lines += [str(block.content), ""]
        elif block.kind == "list":
            lines += [f"- {item}" for item in block.content] + [""]
        elif block.kind == "table":
            if block.caption:
                lines += [block.caption, ""]
            lines += [_markdown_table(block.content) if len(block.content) else "(none)", ""]
        elif block.kind == "figure":
            path = Path(block.content)
            lines += [f"![{block.caption or path.stem}]({path.relative_to(base)})", ""]
        elif block.kind == "pre":
            lines += ([block.caption, ""] if block.caption else []) + [
                "```", str(block.content).rstrip(), "```", ""]
    return "\n".join(lines)


def _markdown_table(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def to_html(title: str, content: list[Block]) -> str:
    """One self-contained page: figures embedded as base64 PNG."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for block in content:
        if block.kind == "h2":
            body.append(f"<h2>{html.escape(str(block.content))}</h2>")
        elif block.kind == "text":
            body.append(f"<p>{html.escape(str(block.content))}</p>")
        elif block.kind == "list":
            body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block.content)
                        + "</ul>")
        elif block.kind == "table":
            caption = f"<p>{html.escape(block.caption)}</p>" if block.caption else ""
            table = block.content.to_html(index=False, border=0) if len(block.content) else \
                "<p>(none)</p>"
            body.append(caption + table)
        elif block.kind == "figure":
            data = base64.b64encode(Path(block.content).read_bytes()).decode()
            caption = html.escape(block.caption or Path(block.content).stem)
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                        f"<figcaption>{caption}</figcaption></figure>")
        elif block.kind == "pre":
            caption = f"<p>{html.escape(block.caption)}</p>" if block.caption else ""
            body.append(f"{caption}<pre>{html.escape(str(block.content))}</pre>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "img{max-width:100%}table{border-collapse:collapse;font-size:90%}"
             "td,th{padding:2px 8px;border-bottom:1px solid #ddd}pre{background:#f6f6f6;"
             "padding:8px;overflow-x:auto}figcaption{color:#555;font-size:90%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_report(folder: str | Path, name: str | None = None, config: dict | None = None
                 ) -> list[Block]:
    """Write the report of the run in ``folder`` (``<results>/<name>``) as report.md and
    report.html there (atomically); returns its content."""
    from neurocnnf.io import atomic_write

    layout = ResultsLayout(Path(folder))
    if not layout.root.is_dir():
        raise FileNotFoundError(f"no workflow results in {layout.root}")
    title = f"neurocnnf report: {name or layout.root.name}"
    content = blocks(layout, config)
    text = to_markdown(title, content, layout.report_markdown.parent)
    atomic_write(layout.report_markdown, lambda tmp: Path(tmp).write_text(text))
    page = to_html(title, content)
    atomic_write(layout.report_html, lambda tmp: Path(tmp).write_text(page))
    return content
