"""Every notebook runs top to bottom: 01-05 against the outputs of a real workflow run, 06 on
the pretrained models."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# smaller than the notebooks' defaults, injected after their parameters cell as papermill does
# (06 attacks and iterates its 200 images for 90 s; every cell still runs)
PARAMETERS = {"06-pretrained": {"N_IMAGES": 48, "PGD_STEPS": 4}}


def test_the_six_notebooks_exist():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, workflow_run, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("NEUROCNNF_RESULTS", str(workflow_run / "results" / "test"))
    # the kernel inherits this environment: under MPLBACKEND=Agg (set by a caller, or by the
    # neurocnnf entry point) a notebook would show no inline figures
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(path, as_version=4)
    assert "parameters" in notebook.cells[1].metadata.get("tags", [])
    if path.stem in PARAMETERS:
        source = "\n".join(f"{k} = {v!r}" for k, v in PARAMETERS[path.stem].items())
        notebook.cells.insert(2, nbformat.v4.new_code_cell(
            source, metadata={"tags": ["injected-parameters"]}))
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = [o for cell in notebook.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "every notebook shows at least one figure"
