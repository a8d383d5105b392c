"""Run the notebooks against one workflow run and keep their outputs (figures, tables) in the
files, so that the repository and the documentation site show them.

    python analyses/render_notebooks.py                      # results/quickstart (make demo)
    python analyses/render_notebooks.py --results results/paper-fmnist 05-robustness
    python analyses/render_notebooks.py --check              # exit 1 if outputs are stale

Each notebook runs top to bottom in notebooks/ (``NEUROCNNF_RESULTS`` = ``--results``) and is
written back with its outputs (less stderr: warnings of the machine it ran on) and, in its
metadata, what they were made from: the results folder, the workflow config's name and a
digest of the code cells. ``--check`` (and
tests/test_docs.py) fails when a notebook has no outputs or its cells changed since.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from neurocnnf.io import atomic_write

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KEY = "neurocnnf"  # the notebook metadata entry this script writes


def cells_digest(notebook: nbformat.NotebookNode) -> str:
    """sha256 of the code cells' sources, in order: what the stored outputs belong to."""
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def render(path: Path, results: Path, timeout: int = 1200) -> Path:
    """Execute ``path`` against ``results`` and write it back with its outputs."""
    notebook = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    # the kernel inherits this environment: under MPLBACKEND=Agg (set by the neurocnnf entry
    # point, say) a notebook would show no inline figures
    os.environ.pop("MPLBACKEND", None)
    os.environ["NEUROCNNF_RESULTS"] = os.path.relpath(results, path.parent)
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    for cell in notebook.cells:  # stderr: warnings of the machine it ran on, with its paths
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if not (o.output_type == "stream" and o.name == "stderr")]
    reads = any("NEUROCNNF_RESULTS" in cell.source for cell in notebook.cells)
    notebook.metadata[KEY] = {"results": os.path.relpath(results, ROOT) if reads else None,
                              "config": results.name if reads else None,
                              "cells_sha256": cells_digest(notebook),
                              "made_by": "analyses/render_notebooks.py"}
    atomic_write(path, lambda tmp: nbformat.write(notebook, tmp))
    return path


def stale(path: Path) -> str | None:
    """Why ``path``'s stored outputs do not belong to its cells (None when they do)."""
    notebook = nbformat.read(path, as_version=4)
    made = notebook.metadata.get(KEY)
    if made is None:
        return "never rendered"
    if made.get("cells_sha256") != cells_digest(notebook):
        return "its code cells changed since its outputs were made"
    outputs = [o for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]
    if not any("image/png" in o.get("data", {}) for o in outputs):
        return "it shows no figure"
    if any(o.get("output_type") == "error" for o in outputs):
        return "a cell failed"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks (stems) to render (default: all)")
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "quickstart",
                        help="the workflow's output folder of one config")
    parser.add_argument("--check", action="store_true", help="only report stale notebooks")
    args = parser.parse_args()
    paths = [p for p in sorted(NOTEBOOKS.glob("*.ipynb"))
             if not args.names or p.stem in args.names]
    if args.check:
        problems = [f"{p.name}: {why}" for p in paths if (why := stale(p))]
        print("\n".join(problems) or "every notebook's outputs belong to its cells")
        sys.exit(1 if problems else 0)
    if not args.results.is_dir():
        raise SystemExit(f"{args.results} does not exist: run the workflow first (make demo)")
    for path in paths:
        print(f"rendering {path.name} against {args.results}", flush=True)
        render(path, args.results.resolve())


if __name__ == "__main__":
    main()
