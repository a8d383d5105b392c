"""The package as a user installs it: version, the shipped workflow, citation metadata, and
(slow) a fresh virtual environment with the built wheel."""

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from neurocnnf.workflow import WorkflowError, init

REPO = Path(__file__).resolve().parents[1]
CPU_TORCH = next(line for line in (REPO / "constraints.txt").read_text().splitlines()
                 if line.startswith("torch=="))


def _run(*command: str | Path, cwd: Path | None = None, env: dict | None = None,
         timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)
    assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


def test_version_comes_from_the_installed_metadata_and_python_m_works(tmp_path):
    # outside the checkout, whose neurocnnf.egg-info (left by in-tree builds) would be read
    done = _run(sys.executable, "-m", "neurocnnf", "--version", cwd=tmp_path)
    installed = _run(sys.executable, "-c", "from importlib.metadata import version; "
                     "print(version('neurocnnf'))", cwd=tmp_path).stdout.strip()
    assert done.stdout.strip() == f"neurocnnf {installed}"
    assert re.fullmatch(r"neurocnnf \d+(\.\d+)+\S*", done.stdout.strip())  # 0.1.devN untagged


def test_citation_names_the_paper_and_the_latest_release():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    released = re.findall(r"^## (\d+\.\d+\.\d+)", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert citation["version"] == released[0]
    assert citation["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT")
    assert "Recurrent Generative Feedback" in citation["preferred-citation"]["title"]


def _plan(folder: Path, *args: str) -> dict[str, int]:
    """Job counts of a snakemake dry run in ``folder`` (no -s: snakemake finds the workflow)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = _run(Path(sys.executable).parent / "snakemake", "-n", *args, cwd=folder, env=env)
    table = done.stdout.split("Job stats:")[1].split("Reasons:")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_workflow_init_lays_out_the_template_and_snakemake_plans_from_it(tmp_path):
    pytest.importorskip("snakemake")
    _run(sys.executable, "-m", "neurocnnf", "workflow", "init", "--out", tmp_path / "wf")
    folder = tmp_path / "wf"
    for path in ("workflow/Snakefile", "workflow/rules/common.smk",
                 "workflow/schemas/config.schema.yaml", "workflow/profiles/default/config.yaml",
                 "workflow/profiles/slurm/config.yaml", "config/config.yaml",
                 "config/README.md", ".test/config/config.yaml"):
        assert (folder / path).is_file(), path
    assert (folder / "config/config.yaml").read_text() == (
        REPO / "workflows/config/quickstart.yaml").read_text()
    plan = _plan(folder)
    assert plan["all"] == 1 and plan["train"] >= 3 and plan["report"] == 1
    # the copied test config plans the same jobs as the repository's own
    test_plan = _plan(folder, "--configfile", ".test/config/config.yaml")
    assert test_plan == _plan(REPO, "-s", "workflows/Snakefile", "--configfile",
                              "workflows/config/test.yaml", "--directory", str(tmp_path / "r"))


def test_workflow_init_refuses_a_folder_holding_one(tmp_path):
    init(tmp_path)
    with pytest.raises(WorkflowError, match="already exists"):
        init(tmp_path)
    (tmp_path / "workflow" / "Snakefile").write_text("changed")
    init(tmp_path, overwrite=True)
    assert (tmp_path / "workflow" / "Snakefile").read_text() != "changed"
    assert not (tmp_path / ".workflow-partial").exists()


@pytest.mark.slow
def test_the_built_wheel_installs_in_a_fresh_venv_with_only_the_cpu_torch(tmp_path):
    """pip install of the wheel beside a pre-installed CPU torch: nothing replaces torch,
    pip check is clean, and the shipped workflow plans."""
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", REPO,
         timeout=600)
    wheel = next((tmp_path / "dist").glob("neurocnnf-*.whl"))
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    # --no-compile: pip's byte-compiling of torch alone took 30 of 40 s; the test runs only a
    # few processes, which compile what they import
    _run(python, "-m", "pip", "install", "-q", "--no-compile", CPU_TORCH, timeout=600)
    torch_version = [python, "-c", "import torch; print(torch.__version__)"]
    torch_before = _run(*torch_version, cwd=tmp_path).stdout
    _run(python, "-m", "pip", "install", "-q", "--no-compile", f"{wheel}[analysis,workflows]",
         timeout=600)
    assert _run(*torch_version, cwd=tmp_path).stdout == torch_before
    _run(python, "-m", "pip", "check")
    done = _run(tmp_path / "venv" / "bin" / "neurocnnf", "--version")
    assert done.stdout.strip() == f"neurocnnf {wheel.name.split('-')[1]}"
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    _run(python.parent / "neurocnnf", "workflow", "init", "--out", tmp_path / "wf", env=env)
    done = _run(python.parent / "snakemake", "-n", cwd=tmp_path / "wf", env=env)
    assert "This was a dry-run" in done.stdout
