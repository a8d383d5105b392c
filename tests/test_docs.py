"""The documentation site builds in strict mode (any mkdocs warning fails: a broken nav entry,
a page that cannot be read, a docstring mkdocstrings cannot render), its API reference covers
the public entry points, and its notebook pages show the figures stored in the notebooks,
which belong to the notebooks' current cells (analyses/render_notebooks.py)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_the_site_builds_strict_with_the_api_reference_and_the_notebooks(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocs_jupyter")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
         "-d", str(tmp_path / "site")], capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("neurocnnf.extract_features", "neurocnnf.load", "neurocnnf.models.build_model",
                 "neurocnnf.workflow.init", "neurocnnf.viz.style.save_figure"):
        assert f'id="{name}"' in api, name
    for page in ("architecture", "models", "extraction", "analyses", "robustness", "workflow"):
        assert (tmp_path / "site" / page / "index.html").is_file(), page
    for notebook in NOTEBOOKS:
        html = (tmp_path / "site" / "notebooks" / notebook.stem / "index.html").read_text()
        assert 'class="jp-RenderedImage' in html, f"the {notebook.stem} page shows no figure"


def _renderer():
    spec = importlib.util.spec_from_file_location(
        "render_notebooks", REPO / "analyses" / "render_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_stored_outputs_belong_to_the_notebooks_cells(path):
    pytest.importorskip("nbclient")
    renderer = _renderer()
    assert renderer.stale(path) is None, (
        f"{path.name}: {renderer.stale(path)}; rerun analyses/render_notebooks.py "
        f"{path.stem} (after make demo)")


def test_a_changed_cell_makes_the_outputs_stale(tmp_path):
    pytest.importorskip("nbclient")
    import nbformat

    renderer = _renderer()
    notebook = nbformat.read(NOTEBOOKS[-1], as_version=4)
    code = next(c for c in notebook.cells if c.cell_type == "code")
    code.source += "\n# edited"
    nbformat.write(notebook, tmp_path / "edited.ipynb")
    assert "changed" in renderer.stale(tmp_path / "edited.ipynb")
