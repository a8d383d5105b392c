"""docs/cifar10.md is rendered from the zoo's committed records, never edited by hand."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_page_equals_its_rendering():
    sys.path.insert(0, str(ROOT / "analyses"))
    try:
        from render_cifar10 import render
    finally:
        sys.path.remove(str(ROOT / "analyses"))
    records = ROOT / "docs" / "reproduction" / "cifar10"
    assert render(records) == (ROOT / "docs" / "cifar10.md").read_text()


def test_every_run_record_resumes(tmp_path):
    from neurocnnf.train.checkpoint import load_resume_state

    runs = sorted((ROOT / "docs" / "reproduction" / "cifar10" / "runs").glob("*-s*"))
    assert {r.name for r in runs} >= {"cnn-s0", "cnnf1-s0", "pc-s0"}
    for run in runs:
        state = load_resume_state(run / "resume.pt")
        lines = (run / "metrics.jsonl").read_text().splitlines()
        assert state["epoch"] == len(lines) >= 1
