"""Shared fixtures: one real run of the Snakemake workflow on the tiny test config."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflows" / "Snakefile"
TEST_CONFIG = REPO / "workflows" / "config" / "test.yaml"


def snakemake(workdir: Path, *args: str, config: Path = TEST_CONFIG
              ) -> subprocess.CompletedProcess:
    """Run the real snakemake (of this environment) in ``workdir``; output as text."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--configfile",
               str(config), "--directory", str(workdir), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=1500)


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory) -> Path:
    """The workdir of a complete workflow run on workflows/config/test.yaml."""
    pytest.importorskip("snakemake")
    workdir = tmp_path_factory.mktemp("workflow")
    result = snakemake(workdir, "--cores", "2", "--rerun-incomplete")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


@pytest.fixture(scope="session")
def cifar10_test():
    """The CIFAR-10 test split (10,000 images), read once per session (the JPEG archive is
    decoded in about 5-15 s)."""
    from neurocnnf.data import cifar10

    return cifar10("test")
