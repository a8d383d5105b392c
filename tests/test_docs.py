"""The documentation site builds in strict mode (any mkdocs warning fails: a broken nav entry,
a page that cannot be read, a docstring mkdocstrings cannot render), and its API reference
covers the public entry points."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_site_builds_strict_with_the_api_reference(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
         "-d", str(tmp_path / "site")], capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("neurocnnf.extract_features", "neurocnnf.load", "neurocnnf.models.build_model",
                 "neurocnnf.workflow.init"):
        assert f'id="{name}"' in api, name
    assert (tmp_path / "site" / "architecture" / "index.html").is_file()
