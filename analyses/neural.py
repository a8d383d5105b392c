"""Real brain data and human uncertainty (issue 31): run the analyses on given models and render
docs/neural.md from their result files (no number in it is typed by hand).

    python analyses/neural.py run --cnnf CKPT --cnn CKPT [--pc CKPT] [--n-boot 300]
                                  [--work results/neural-docs] [--docs docs/neural]
    python analyses/neural.py collect [--work results/neural-docs] [--docs docs/neural]
    python analyses/neural.py report [--docs docs/neural]

``run``: ``analyze neural`` on the four brain data sets with the natural-image models and the
Fashion-MNIST models as the negative control (pretrained fmnist-small-cnnf5, -cnn, -pc), and
``analyze human-uncertainty`` with the CIFAR-10 models; full outputs under ``--work``, the
tables, JSON and figures the document shows copied to ``--docs`` with the models' sha256.
``collect``: that copy alone (after ``run``'s analyses were run another way); both end with
``registry``.
``registry``: the package's default Brain-Score commitment of the natural-image architecture
(neurocnnf/models/commitments.json: vgg6 from the CNN-F's EVC and IT layers) from ``--docs``'s
commitment.json.
``report``: docs/neural.md from ``--docs``, and the README's paragraph between its
neural-headline markers.
``figures``: the similarity and layer-hierarchy figures redrawn from ``--docs``'s tables (with
one point per subject where ``collect`` copied subjects.csv); the model-comparison heatmaps
need the run's bootstrap and come from ``run`` only.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from neurocnnf.io import atomic_write

CONTROLS = {"FMNIST CNN-F-5": "pretrained:fmnist-small-cnnf5",
            "FMNIST CNN": "pretrained:fmnist-small-cnn", "FMNIST PC": "pretrained:fmnist-small-pc"}
DATASETS = ["algonauts92", "algonauts78", "kriegeskorte92", "judgements92"]
HEADLINE = ("<!-- neural-headline: rendered from docs/neural by analyses/neural.py report -->",
            "<!-- /neural-headline -->")
REGISTRY = Path(__file__).resolve().parents[1] / "neurocnnf" / "models" / "commitments.json"
COMMITTED = {"vgg6": "CNN-F"}  # architecture -> the model whose commitment it takes
SHOWN = ["similarity_vs_iteration.png", "layer_hierarchy.png", "model_comparison_IT.png",
         "model_comparison_EVC.png", "rdms.png"]


def run(args: argparse.Namespace) -> None:
    from neurocnnf.pipelines.human_uncertainty import run_human_uncertainty
    from neurocnnf.pipelines.neural import run_neural

    natural = {"CNN-F": args.cnnf, "CNN": args.cnn, **({"PC": args.pc} if args.pc else {})}
    work = Path(args.work)
    run_neural({**natural, **CONTROLS}, DATASETS, work / "neural", n_boot=args.n_boot)
    run_human_uncertainty(natural, work / "human_uncertainty", n_boot=args.n_boot_images)
    collect(args)


def collect(args: argparse.Namespace) -> None:
    """Copy what the document shows from ``--work`` to ``--docs``, with the models' sha256."""
    from neurocnnf.data.download import file_digest
    from neurocnnf.train.checkpoint import read_metadata, resolve_checkpoint

    work, docs = Path(args.work), Path(args.docs)
    sources = json.loads((work / "neural" / "summary.json").read_text())["models"]
    models = {}
    for name, source in sources.items():
        path = resolve_checkpoint(source)
        meta = read_metadata(path)
        models[name] = {"source": source, "sha256": file_digest(path),
                        "arch": meta.get("config", {}).get("model", {}).get("arch"),
                        "epoch": meta.get("epoch"),
                        "epochs": meta.get("config", {}).get("optim", {}).get("epochs"),
                        "val_acc": meta.get("metrics", {}).get("val_acc_last")}
    docs.mkdir(parents=True, exist_ok=True)
    atomic_write(docs / "models.json", lambda tmp: Path(tmp).write_text(json.dumps(
        models, indent=2)))
    for name in ("tests.csv", "held_out.csv", "commitment.json", "summary.json", "cka.csv"):
        shutil.copy(work / "neural" / name, docs / name)
    for figure in (work / "neural").glob("cka_*.png"):
        shutil.copy(figure, docs / figure.name.replace(" ", "-"))  # model labels have spaces
    for dataset in DATASETS:
        (docs / dataset).mkdir(exist_ok=True)
        for table in ("similarity.csv", "subjects.csv"):
            shutil.copy(work / "neural" / dataset / table, docs / dataset)
        for figure in SHOWN:
            if (work / "neural" / dataset / figure).exists():
                shutil.copy(work / "neural" / dataset / figure, docs / dataset / figure)
    if (work / "human_uncertainty" / "summary.json").exists():
        (docs / "human_uncertainty").mkdir(exist_ok=True)
        for name in ("per_iteration.csv", "comparisons.csv", "entropy_vs_iteration.csv",
                     "summary.json", "cross_entropy_vs_iteration.png",
                     "entropy_vs_settling.png"):
            shutil.copy(work / "human_uncertainty" / name, docs / "human_uncertainty" / name)
    registry(argparse.Namespace(docs=str(docs), out=str(REGISTRY)))


def registry(args: argparse.Namespace) -> None:
    """Write ``--out`` (commitments.json): per architecture of ``COMMITTED``, its model's EVC
    and IT commitment from ``--docs``'s commitment.json as Brain-Score regions
    (``neurocnnf.models.commitments.regions_from_rsa``), with where it came from."""
    from neurocnnf.models import build_model
    from neurocnnf.models.commitments import regions_from_rsa

    docs = Path(args.docs)
    commitment = json.loads((docs / "commitment.json").read_text())
    models = json.loads((docs / "models.json").read_text())
    architectures = {}
    for arch, model in COMMITTED.items():
        picks = {region: commitment["regions"][region][model] for region in ("EVC", "IT")}
        recorded = models[model].get("arch")
        if recorded not in (None, arch):
            raise ValueError(f"{docs}/models.json: {model} is a {recorded}, not a {arch}")
        architectures[arch] = {
            "model": model, "sha256": models[model]["sha256"], "epoch": models[model]["epoch"],
            "regions": regions_from_rsa(picks["EVC"]["layer"], picks["IT"]["layer"],
                                        build_model(arch).taps),
            "chosen": picks}
    content = {"written_by": "analyses/neural.py registry", "source": str(docs /
                                                                          "commitment.json"),
               "chosen_on": commitment["chosen_on"], "method": commitment["method"],
               "rule": commitment["rule"], "architectures": architectures}
    atomic_write(Path(args.out), lambda tmp: Path(tmp).write_text(
        json.dumps(content, indent=2) + "\n"))


def figures(args: argparse.Namespace) -> None:
    """Redraw each data set's similarity_vs_iteration.png and layer_hierarchy.png from
    ``--docs``'s similarity.csv (and subjects.csv where there is one)."""
    from neurocnnf.viz import neural as fig
    from neurocnnf.viz.style import save_figure

    docs = Path(args.docs)
    summary = json.loads((docs / "summary.json").read_text())
    chosen = summary["commitment"]
    iterations = {m: c["iteration"] for m, c in chosen["IT"].items()}
    for dataset in summary["datasets"]:
        folder = docs / dataset
        table = pd.read_csv(folder / "similarity.csv")
        subjects = (pd.read_csv(folder / "subjects.csv")
                    if (folder / "subjects.csv").exists() else None)
        save_figure(fig.similarity_vs_iteration(table, subjects, chosen, summary["focus"]),
                    folder / "similarity_vs_iteration.png")
        save_figure(fig.layer_hierarchy(table, iterations), folder / "layer_hierarchy.png")


# ---------------------------------------------------------------- the document


def _f(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}" if value < 0 else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return ("p n/a" if pd.isna(value) else "p < 0.001" if value < 0.001
            else f"p = {value:.3f}")


def _trained(model: dict) -> str:
    """'epoch e of E, validation accuracy a %' from a models.json entry (what is known)."""
    parts = []
    if model.get("epoch") is not None:
        parts.append(f"epoch {model['epoch']}" + (f" of {model['epochs']}"
                                                  if model.get("epochs") else ""))
    if model.get("val_acc") is not None:
        parts.append(f"validation accuracy {100 * model['val_acc']:.1f} %")
    return ", ".join(parts) or "n/a"


def _verdict(row: pd.Series) -> str:
    """'higher'/'lower' (by the sign of the difference) and whether FDR keeps it."""
    direction = "higher" if row["difference"] > 0 else "lower"
    kept = "significant after FDR" if row["significant"] else "not significant after FDR"
    if pd.isna(row["p"]):
        return "the same layer (nothing to test)"
    return f"{direction} by {abs(row['difference']):.3f} ({_p(row['p'])}, {kept})"


def _table(frame: pd.DataFrame) -> list[str]:
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(
        index=False)]
    return lines + [""]


def _cka(docs: Path) -> list[str]:
    """How far each layer's representation moves over the iterations: linear CKA of the first
    iteration with the last, per model and layer, and the figures of every pair."""
    if not (docs / "cka.csv").exists():
        return []
    cka = pd.read_csv(docs / "cka.csv")
    last = cka.groupby("model")["iteration_b"].transform("max")
    ends = cka[(cka["iteration_a"] == 0) & (cka["iteration_b"] == last)]
    table = ends.pivot(index="layer", columns="model", values="cka").map(
        lambda value: "" if pd.isna(value) else _f(value))
    lines = ["## Representational change over the iterations (CKA)", "",
             "Linear CKA between a layer's features at iteration 0 and at the last iteration "
             "(1: the iterations leave the representation's geometry unchanged), on the images "
             f"of {DATASETS[0]}; the CNN twin runs no iterations.", "",
             *_table(table.reset_index())]
    for figure in sorted(docs.glob("cka_*.png")):
        lines += [f"![{figure.stem.replace('_', ' ')}](neural/{figure.name})", ""]
    return lines


def report(args: argparse.Namespace) -> None:
    docs = Path(args.docs)
    summary = json.loads((docs / "summary.json").read_text())
    models = json.loads((docs / "models.json").read_text())
    tests = pd.read_csv(docs / "tests.csv")
    held = pd.read_csv(docs / "held_out.csv")
    commitment = json.loads((docs / "commitment.json").read_text())
    focus = summary["focus"]
    lines = ["# Real brain data: does feedback make the model more brain-like?", "",
             "Generated by `python analyses/neural.py report` from the files in "
             "`docs/neural/` (written by `python analyses/neural.py run`); do not edit by hand.",
             "", "## Data and models", ""]
    def ceiling(value: float) -> str:  # undefined where a region has a single RDM
        return "n/a (one RDM)" if pd.isna(value) else _f(value)

    ceilings = pd.DataFrame([{"data set / region": key, "lower ceiling": ceiling(low),
                              "upper ceiling": ceiling(high)}
                             for key, (low, high) in summary["ceilings"].items()])
    lines += _table(ceilings)
    lines += [f"Similarity: {summary['method']} correlation of model and subject RDMs (upper "
              "triangles; 1 - Pearson r of a layer's features), averaged over subjects; "
              f"intervals from rsatoolbox's dual bootstrap over subjects and stimuli "
              f"({summary['n_boot']} samples); tests: pairwise t-tests on the dual-bootstrap "
              "variance, Benjamini-Hochberg at 0.01 per data set (rsatoolbox's rule).", ""]
    lines += _table(pd.DataFrame([{"model": name, "checkpoint": m["source"],
                                   "sha256": m["sha256"][:12], "trained": _trained(m)}
                                  for name, m in models.items()]))
    lines += ["## Commitment (chosen on algonauts92, reported on the others)", ""]
    lines += _table(pd.DataFrame([{"region": region, "model": model, "layer": c["layer"],
                                   "iteration": c["iteration"], "similarity (92)":
                                   _f(c["similarity"])}
                                  for region, picks in commitment["regions"].items()
                                  for model, c in picks.items()]))
    shown = held[["dataset", "region", "model", "layer", "iteration"]].copy()
    shown["similarity [95% CI]"] = [f"{_f(s)} [{_f(lo)}, {_f(hi)}]" for s, lo, hi in zip(
        held["similarity"], held["ci_low"], held["ci_high"], strict=True)]
    shown["ceiling"] = [f"{_f(lo)}-{_f(hi)}" if pd.notna(lo) else "n/a"
                        for lo, hi in zip(held["ceiling_low"], held["ceiling_high"], strict=True)]
    lines += ["Held-out scores of the commitment:", ""] + _table(shown)
    questions = [
        ("(1) Does IT similarity change over feedback iterations? (EVC and judgements "
         "shown too)", "1 iterations", [*IT_REGIONS, "EVC", "judgements"]),
        (f"(2) Is {focus} at its committed iteration above its twin and the comparator?",
         "2 models", ["EVC", "IT", "human_IT", "macaque_IT", "judgements"]),
        ("(3) Do early layers match EVC and late layers IT?", "3 hierarchy", ["EVC", "IT"]),
        ("(4) Does the feedback representation match EVC better than the forward one?",
         "4 feedback vs forward", ["EVC"]),
    ]
    for title, question, regions in questions:
        lines += [f"## {title}", ""]
        part = tests[(tests["question"] == question) & tests["region"].isin(regions)]
        if question == "3 hierarchy":
            lines += [f"- {r['dataset']} {r['region']}: {r['a']} (depth {int(r['depth_a'])}) vs "
                      f"{r['b']} (depth {int(r['depth_b'])}): {_verdict(r)}"
                      for _, r in part.iterrows()]
        else:
            lines += [f"- {r['dataset']} {r['region']}: {r['a']} vs {r['b']}: {_verdict(r)}"
                      for _, r in part.iterrows()]
        if question == "1 iterations":
            lines += ["", "(At each model's committed layer. The best iteration is picked on "
                      "the same data it is tested on, so 'best vs iteration 0' leans towards a "
                      "difference; 'last vs iteration 0' does not.)"]
        kept = [f"{r['a']} {'above' if r['difference'] > 0 else 'below'} {r['b']} "
                f"({r['dataset']} {r['region']})" for _, r in part[part["significant"]].iterrows()]
        tested = int(part["p"].notna().sum())
        untested = (" (untested: one-RDM regions such as macaque IT, or two best layers that "
                    "coincide)") if tested < len(part) else ""
        lines += ["", f"In words: {len(kept)} of the {tested} tested comparisons survive the "
                  "FDR correction" + (": " + "; ".join(kept) if kept else "") + untested + ".",
                  ""]
    for dataset in DATASETS:
        for figure in SHOWN:
            if (docs / dataset / figure).exists():
                lines += [f"![{dataset} {figure[:-4].replace('_', ' ')}](neural/{dataset}/"
                          f"{figure})", ""]
    lines += _cka(docs)
    lines += _human_uncertainty(docs / "human_uncertainty")
    atomic_write(Path(args.out), lambda tmp: Path(tmp).write_text("\n".join(lines)))
    readme = Path(args.readme)
    text = readme.read_text()
    if HEADLINE[0] in text and HEADLINE[1] in text:
        head, rest = text.split(HEADLINE[0], 1)
        tail = rest.split(HEADLINE[1], 1)[1]
        block = "\n".join([HEADLINE[0], _headline(tests, docs, focus, models), HEADLINE[1]])
        atomic_write(readme, lambda tmp: Path(tmp).write_text(head + block + tail))


IT_REGIONS = ["IT", "human_IT", "macaque_IT"]


def _count(tests: pd.DataFrame, question: str, positive: bool | None = None,
           regions: list[str] | None = None, model: str | None = None) -> str:
    part = tests[(tests["question"] == question) & tests["p"].notna()]
    if model is not None:
        part = part[part["a"].str.startswith(f"{model} ")]
    if regions is not None:
        part = part[part["region"].isin(regions)]
    kept = part[part["significant"]]
    if positive is not None:
        kept = kept[(kept["difference"] > 0) == positive]
    return f"{len(kept)} of {len(part)}"


def _headline(tests: pd.DataFrame, docs: Path, focus: str, models: dict) -> str:
    """The README's paragraph: each question's count of FDR-significant comparisons."""
    text = (f"**Does feedback make the model more brain-like?** `docs/neural.md` answers it on "
            f"real fMRI (EVC, IT), macaque IT and similarity judgements, with {focus} as the "
            f"model of interest ({_trained(models[focus])}): (1) its IT similarity changes "
            f"over iterations in "
            f"{_count(tests, '1 iterations', regions=IT_REGIONS, model=focus)} FDR-corrected "
            f"comparisons; (2) it is above another model in {_count(tests, '2 models', True)} "
            f"and below in {_count(tests, '2 models', False)}; (3) over all models, a region's "
            f"own best layer beats the other region's best layer in "
            f"{_count(tests, '3 hierarchy', True)}; (4) its feedback matches EVC better than "
            f"its forward pass in {_count(tests, '4 feedback vs forward', True, model=focus)} "
            f"and worse in {_count(tests, '4 feedback vs forward', False, model=focus)}.")
    comparisons = docs / "human_uncertainty" / "comparisons.csv"
    if comparisons.exists():
        text += " " + _human_headline(pd.read_csv(comparisons), focus, models[focus])
    return text


def trained_iterations(model: dict) -> int | None:
    """The iterations a models.json entry was trained with, from its pretrained card (None
    for a checkpoint path: not recorded there)."""
    from neurocnnf import pretrained

    source = model["source"]
    if not source.startswith("pretrained:"):
        return None
    return int(pretrained.card(source.removeprefix("pretrained:"))["iterations"])


def _human_headline(comparisons: pd.DataFrame, focus: str, model: dict) -> str:
    """CIFAR-10H in one sentence: the focus model's cross-entropy differences at the
    iterations it was trained with (the last tested when unknown), and, when it was tested
    further, how far the last tested iteration moved from its first pass."""
    ce = comparisons.query("quantity == 'cross_entropy'")
    ours = ce[ce["a"].str.startswith(f"{focus} t=")]
    tested = ours["a"].str.removeprefix(f"{focus} t=").astype(int)
    trained = trained_iterations(model)
    at = trained if trained is not None and trained in set(tested) else int(tested.max())

    def cell(r: pd.Series) -> str:
        return f"{r['a']} minus {r['b']} {_f(r['value'])} nats [{_f(r['ci_low'])}, " \
               f"{_f(r['ci_high'])}]"

    text = (f"CIFAR-10H, cross-entropy to the human label distributions at {focus}'s "
            + (f"trained T = {at}" if at == trained else f"t = {at}") + ": "
            + "; ".join(cell(r) for _, r in ours[tested == at].iterrows()) + ".")
    last = int(tested.max())
    if last > at:
        far = ours[(tested == last) & (ours["b"] == f"{focus} t=0")]
        text += (f" Run on past its training to t = {last}: "
                 + "; ".join(cell(r) for _, r in far.iterrows()) + ".")
    return text


def _human_uncertainty(folder: Path) -> list[str]:
    if not (folder / "summary.json").exists():
        return []
    summary = json.loads((folder / "summary.json").read_text())
    correlations = pd.read_csv(folder / "entropy_vs_iteration.csv")
    comparisons = pd.read_csv(folder / "comparisons.csv")
    lines = ["## Human uncertainty (CIFAR-10H)", "",
             "Models: " + ", ".join(f"{name} = `{source}`" for name, source in
                                    summary["models"].items()) + ".", "",
             f"{summary['n_images']} CIFAR-10 test images; {summary['n_disputed']} disputed "
             f"(fewer than {summary['disputed_share']:.0%} of the annotators chose the "
             "plurality class); intervals from a bootstrap over images.", ""]
    lines += [f"- {r['model']}: Spearman rho of human label entropy with the "
              f"{r['iteration_kind'].replace('_', ' ')} iteration = "
              + (f"{_f(r['rho'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}]" if pd.notna(r["rho"])
                 else "undefined: every image has the same "
                      f"{r['iteration_kind'].replace('_', ' ')} iteration, which ranks none")
              for _, r in correlations.iterrows()]
    lines += [""]
    ce = comparisons[comparisons["quantity"] == "cross_entropy"]
    for _, r in ce.iterrows():
        better = r["ci_high"] < 0
        worse = r["ci_low"] > 0
        word = ("closer to the humans" if better else "further from the humans" if worse
                else "no different from")
        lines.append(f"- cross-entropy to CIFAR-10H, {r['a']} minus {r['b']}: {_f(r['value'])} "
                     f"nats [{_f(r['ci_low'])}, {_f(r['ci_high'])}], {_p(r['p'])}: "
                     f"{word}" + (" it" if word.startswith("no") else ""))
    lines += ["", "![cross-entropy](neural/human_uncertainty/cross_entropy_vs_iteration.png)",
              "", "![entropy vs settling](neural/human_uncertainty/entropy_vs_settling.png)", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run")
    one.add_argument("--cnnf", required=True)
    one.add_argument("--cnn", required=True)
    one.add_argument("--pc")
    one.add_argument("--n-boot", type=int, default=300)
    one.add_argument("--n-boot-images", type=int, default=1000)
    one.add_argument("--work", default="results/neural-docs")
    one.add_argument("--docs", default="docs/neural")
    three = commands.add_parser("collect")
    three.add_argument("--work", default="results/neural-docs")
    three.add_argument("--docs", default="docs/neural")
    two = commands.add_parser("report")
    two.add_argument("--docs", default="docs/neural")
    two.add_argument("--out", default="docs/neural.md")
    two.add_argument("--readme", default="README.md")
    four = commands.add_parser("figures")
    four.add_argument("--docs", default="docs/neural")
    five = commands.add_parser("registry")
    five.add_argument("--docs", default="docs/neural")
    five.add_argument("--out", default=str(REGISTRY))
    args = parser.parse_args()
    {"run": run, "collect": collect, "report": report, "figures": figures,
     "registry": registry}[args.command](args)


if __name__ == "__main__":
    main()
