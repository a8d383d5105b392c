"""benchmarks/README.md's GPU section is what benchmarks/gpu_report.py writes from the logs
committed beside it: no number there is typed by hand."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU_RUN = ROOT / "benchmarks" / "gpu" / "h200-2026-12-04"


@pytest.fixture
def gpu_report(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_report

    yield gpu_report
    sys.modules.pop("gpu_report", None)


def test_the_gpu_section_is_rendered_from_the_committed_logs(gpu_report):
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    section = readme.split(gpu_report.MARK)[1].strip()
    assert section == gpu_report.report(GPU_RUN).strip()


def test_the_compile_speed_ups_quoted_are_the_lever_tables(gpu_report):
    _, speedups = gpu_report.levers(GPU_RUN)
    rows = gpu_report.lever_rows(GPU_RUN / "lever_compile.txt")
    assert speedups["compile"] == [float(row[3]) for row in rows]
    assert min(speedups["compile"]) > 1.0  # every compiled CNN-F step was faster on the GPU
