"""benchmarks/README.md's GPU section and bf16 table are what benchmarks/gpu_report.py and
analyses/bf16_cost.py write from the files committed beside them: no number typed by hand."""

import json
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


def test_the_bf16_table_is_rendered_from_its_cost_file(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "analyses"))
    import bf16_cost

    cost = json.loads((bf16_cost.ZOO / "bf16" / "cost.json").read_text())
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    assert readme.split(bf16_cost.MARK)[1].strip() == bf16_cost.render(cost).strip()
    # the verdict follows the numbers: no preset trains in bf16 past the bar
    worst = min(c["difference"] for what in ("clean", "apgd-ce 2/255 e2e")
                for c in cost[what].values())
    assert ("no preset trains in bf16" in bf16_cost.render(cost)) == (
        worst < -bf16_cost.PRESET_BAR)
