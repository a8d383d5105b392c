"""The Snakemake workflow shipped with the package, copied out as the Snakemake workflow
template lays one out, so that ``snakemake`` run from that folder finds it::

    DIR/workflow/Snakefile, rules/, schemas/, scripts/, envs/, cluster/
    DIR/workflow/profiles/default (one machine; snakemake uses it unless told otherwise), slurm
    DIR/config/config.yaml (the quickstart) and the other configs; DIR/.test/config/config.yaml

The files come from the repository's ``workflows/`` folder (``neurocnnf.workflow.template`` in
a built wheel, mapped there by setup.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from neurocnnf.errors import NeurocnnfError

PACKAGED = Path(__file__).resolve().parent / "template"
REPOSITORY_WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
CODE = ("Snakefile", "rules", "schemas", "scripts", "envs", "cluster", "README.md")
CONFIG_README = """# Configuration

`config.yaml` is the quickstart (CPU, about 20 minutes on 2 cores); the other files are the
paper's settings and the test config. Run another one with
`snakemake --configfile config/paper-fmnist.yaml`. `workflow/schemas/config.schema.yaml`
describes and checks every setting.
"""


class WorkflowError(NeurocnnfError):
    """The workflow cannot be copied to the folder asked for."""


def template_folder() -> Path:
    """The shipped workflow files: inside the installed package, else a checkout's workflows/
    (an editable install or a checkout on the path)."""
    shipped = next((folder for folder in (PACKAGED, REPOSITORY_WORKFLOWS)
                    if (folder / "Snakefile").is_file()), PACKAGED)
    if not (shipped / "Snakefile").is_file():
        raise WorkflowError(f"no workflow shipped with this installation (looked in {shipped})")
    return shipped


def init(folder: Path, overwrite: bool = False) -> list[Path]:
    """Copy the workflow into ``folder`` (created) in the template layout; returns the paths
    written at its top (workflow/, config/, .test/). Refuses a folder already holding one."""
    source = template_folder()
    folder = Path(folder)
    targets = [folder / "workflow", folder / "config", folder / ".test"]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise WorkflowError(f"{existing[0]} already exists: choose an empty folder or pass "
                            "--overwrite")
    folder.mkdir(parents=True, exist_ok=True)
    for target in existing:
        shutil.rmtree(target)
    staging = folder / ".workflow-partial"
    shutil.rmtree(staging, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake")
    (staging / "workflow").mkdir(parents=True)
    for name in CODE:
        item = source / name
        if item.is_dir():
            shutil.copytree(item, staging / "workflow" / name, ignore=ignore)
        elif item.is_file():
            shutil.copy2(item, staging / "workflow" / name)
    profiles = source / "profiles"
    shutil.copytree(profiles / "local", staging / "workflow" / "profiles" / "default")
    shutil.copytree(profiles / "slurm", staging / "workflow" / "profiles" / "slurm")
    shutil.copytree(source / "config", staging / "config", ignore=ignore)
    shutil.copy2(source / "config" / "quickstart.yaml", staging / "config" / "config.yaml")
    (staging / "config" / "README.md").write_text(CONFIG_README)
    (staging / ".test" / "config").mkdir(parents=True)
    shutil.copy2(source / "config" / "test.yaml", staging / ".test" / "config" / "config.yaml")
    for target in targets:
        (staging / target.name).rename(target)
    staging.rmdir()
    return targets

