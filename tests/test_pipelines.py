"""The runners' layer: one input path (StimulusSet + perturb + render), one results layout,
and the package's layering (no import cycles through the layers the runners join)."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import labelled_set

from neurocnnf.pipelines.layout import ResultsLayout
from neurocnnf.pipelines.predictive_coding import noisy_images
from neurocnnf.stimuli import render

PACKAGE = Path(__file__).resolve().parents[1] / "neurocnnf"


def test_predictive_coding_noise_is_perturb_and_render():
    """The comparison's noisy images are the stimulus set's noise perturbation: the old
    add_noise formula clamp(x + sigma * randn), seeded per stimulus (seed * 1_000_003 + row of
    the perturbed set) instead of per batch (a deliberate change: an image's noise no longer
    depends on the batch size), and the clean level always present."""
    stimuli = labelled_set(5, seed=4, image_seed=2)
    images = noisy_images(stimuli, (0.2, 0.4), 1, 28, seed=4)
    assert list(images) == [0.0, 0.2, 0.4]
    clean = stimuli.images.float() / 255
    assert torch.equal(images[0.0], clean)
    assert torch.equal(images[0.0], render(stimuli, np.arange(5), 1, 28))
    for block, sigma in enumerate((0.2, 0.4), start=1):
        expected = torch.stack([
            (x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(
                4 * 1_000_003 + block * 5 + i))).clamp(0, 1) for i, x in enumerate(clean)])
        assert torch.equal(images[sigma], expected), sigma
    # the clean level is added when not asked for, and not repeated when it is
    assert list(noisy_images(stimuli, (0.0, 0.3), 1, 28)) == [0.0, 0.3]


def test_compare_needs_the_clean_images_and_one_image_set():
    from neurocnnf.analysis.predictive_coding import compare
    from neurocnnf.models import PredictiveCodingNet

    model = PredictiveCodingNet(iterations=1).eval()
    x, labels = torch.rand(4, 1, 28, 28), torch.arange(4)
    with pytest.raises(ValueError, match="clean images"):
        compare({"pc": model}, {0.3: x}, labels, progress=False)
    with pytest.raises(ValueError, match="same images"):
        compare({"pc": model}, {0.0: x, 0.3: x[:2]}, labels, progress=False)


def test_layout_paths_keep_wildcards_and_find_what_exists(tmp_path):
    layout = ResultsLayout(tmp_path / "run")
    assert str(layout.activations("{model}", "{purpose}")).endswith(
        "run/activations/{model}/{purpose}.nc")
    assert layout.log("train", "{model}-seed{seed}") == \
        tmp_path / "run" / "logs" / "train" / "{model}-seed{seed}.log"
    assert layout.checkpoint("cnnf", 0).parent == layout.trained("cnnf", 0).parent
    for model in ("pc", "cnnf"):
        (layout.difficulty(model)).mkdir(parents=True)
        layout.difficulty_files(model).summary.write_text("{}\n")
    (layout.difficulty("cnn")).mkdir()  # no summary: not listed
    assert [p.parent.name for p in layout.matching(layout.difficulty_files("*").summary)] == [
        "cnnf", "pc"]


def test_layout_names_each_file_once(tmp_path):
    """The runners, the workflow rules and the report spell no result file name: each comes
    from the layout's Files, so a runner writes where the rule and the report look."""
    import re

    from neurocnnf.pipelines.layout import Files, NeuralFiles, RobustnessFiles

    layout = ResultsLayout(tmp_path / "run")
    assert layout.difficulty_files("{model}").table == layout.difficulty("{model}") / \
        "difficulty.csv"
    assert NeuralFiles(tmp_path).cka_figure("CNN-F") == tmp_path / "cka_CNN-F.png"
    assert layout.robustness_files.fgsm_figure.parent == layout.robustness_files.figures
    assert layout.neural_files.dataset("algonauts92").similarity.parent.name == "algonauts92"
    for files in Files.__subclasses__():  # every role a file of its own, in its folder
        paths = [getattr(files(tmp_path), name) for name, value in vars(files).items()
                 if isinstance(value, property)]
        assert paths and len(set(paths)) == len(paths), files
        assert all(tmp_path in p.parents for p in paths), files
    assert RobustnessFiles(tmp_path).results.name == "results.csv"  # what the report reads
    file_name = re.compile(r"^[\w{}][\w{}*./-]*\.(csv|json|png|txt|md|nc)$")  # not a glob
    spelled = []
    for path in sorted((PACKAGE / "pipelines").glob("*.py")):
        if path.name in ("layout.py", "corruptions.py", "partial.py"):  # corruptions: no rule
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        spelled += [f"{path.name}: {node.value}" for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings and file_name.match(node.value)]
    rules = PACKAGE.parent / "workflows" / "rules"
    for path in sorted(rules.glob("*.smk")):
        spelled += [f"{path.name}: {m}" for m in re.findall(
            r"[\"']([\w{}*./-]+\.(?:csv|json|png|txt|md|nc))[\"']", path.read_text())]
    assert spelled == [], f"name these files in neurocnnf/pipelines/layout.py: {spelled}"


def _subpackage_imports() -> dict[str, set[str]]:
    """neurocnnf subpackage -> the other subpackages it imports (module or function level)."""
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        own = parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                head, _, rest = name.partition(".")
                if head == "neurocnnf" and rest and rest.split(".")[0] != own:
                    edges.setdefault(own, set()).add(rest.split(".")[0])
    return edges


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_layering_analysis_below_viz_below_pipelines():
    edges = _subpackage_imports()
    assert "viz" not in _reachable(edges, "analysis")  # analyses compute, figures draw them
    for layer in ("stimuli", "analysis", "viz", "pipelines"):
        assert layer not in _reachable(edges, layer), f"an import cycle through {layer}"
    importers = {name for name, targets in edges.items() if "pipelines" in targets}
    assert importers <= {"cli"}, f"{importers} import the runners' layer"


def _layer_table() -> list[list[str]]:
    """The modules column of docs/architecture.md's layer table, row by row (paths under
    neurocnnf/; a folder ends with '/')."""
    import re

    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    table = text.split("## Layers", 1)[1].split("\n\n| layer |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[2] for line in table.splitlines()[2:]]
    return [re.findall(r"`([\w/.]+)`", row) for row in rows]


def _module_imports(path: Path) -> set[str]:
    """The neurocnnf modules ``path`` imports (module or function level), as paths under
    neurocnnf/ ('attacks/pgd.py', 'models/__init__.py'); ``from package import module``
    names the module."""
    found = set()

    def file_of(name: str) -> str | None:
        if name == "neurocnnf":
            return "__init__.py"
        base = PACKAGE.joinpath(*name.split(".")[1:])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.exists():
                return candidate.relative_to(PACKAGE).as_posix()
        return None

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "neurocnnf":
                continue
            modules = [file_of(f"{node.module}.{a.name}") for a in node.names]
            found.update(m for m in modules if m)
            if not all(modules):
                found.add(file_of(node.module))
        elif isinstance(node, ast.Import):
            found.update(file_of(a.name) for a in node.names if a.name.startswith("neurocnnf."))
    return found - {None}


def test_every_module_imports_only_the_layers_above_it():
    """docs/architecture.md's layer table is the rule: every module of the package is in one
    row, and imports (at module or function level) only modules of its own row or rows above."""
    rows = _layer_table()
    assert len(rows) >= 10 and all(rows), rows

    def row_of(module: str) -> int | None:
        matches = [(len(entry), i) for i, entries in enumerate(rows) for entry in entries
                   if module == entry or entry.endswith("/") and module.startswith(entry)]
        return max(matches)[1] if matches else None

    modules = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                     if "template" not in p.parts)
    unplaced = [m for m in modules if row_of(m) is None]
    assert unplaced == [], f"add these modules to the layer table of docs/architecture.md: " \
        f"{unplaced}"
    upward = [f"{m} -> {target}" for m in modules for target in _module_imports(PACKAGE / m)
              if row_of(target) > row_of(m)]
    assert upward == [], f"imports of a layer below (docs/architecture.md): {upward}"


def test_the_report_reads_robustness_from_results_csv(tmp_path):
    import pandas as pd

    from neurocnnf.pipelines.report import headline, robustness_table

    layout = ResultsLayout(tmp_path)
    # (attack, eps, target, steps, accuracy): FGSM / PGD-first on a grid, e2e at the table's eps
    plan = [("fgsm", eps, "first", 0, 0.6 - eps) for eps in (0.05, 0.1, 0.2)]
    plan += [("pgd", eps, "first", 40, 0.5 - eps) for eps in (0.05, 0.1, 0.2)]
    plan += [("pgd", 0.1, "e2e", 40, 0.3)]
    rows = []
    for model, iterations, scorings in (("cnn", 0, ("last",)), ("cnnf", 2, ("last", "avg"))):
        clean = ("clean", 0.0, "", 0, 0.9 if iterations else 0.8)
        rows += [{"model": model, "iterations": iterations, "scoring": scoring, "attack": attack,
                  "eps": eps, "target": target, "steps": steps, "accuracy": accuracy, "n": 20,
                  "sweep": ""}
                 for scoring in scorings
                 for attack, eps, target, steps, accuracy in [clean, *plan]]
    layout.robustness.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(layout.robustness / "results.csv", index=False)
    table, caption = robustness_table(layout)
    assert caption.startswith("Accuracy (%) at eps = 0.1") and "n = 20" in caption
    table = table.set_index("model")
    assert list(table.index) == ["CNN", "CNN-F (last)", "CNN-F (avg)"]
    assert table.loc["CNN-F (last)", "Clean"] == "90.00"
    assert table.loc["CNN", "PGD (first)"] == "40.00" and table.loc["CNN-F (avg)", "Min"] == "30.00"
    assert robustness_table(layout, 0.2)[0].set_index("model").loc["CNN", "Min"] == "30.00"
    assert "CNN-F (last) 90.00 / 30.00" in " ".join(headline(layout))
    assert robustness_table(ResultsLayout(tmp_path / "none"))[0].empty
