"""The one thing pyproject.toml cannot say: the repository's workflows/ folder ships inside the
package as ``neurocnnf.workflow.template`` (``neurocnnf workflow init`` copies it out), so
every sub-folder of it is listed as a package mapped onto workflows/. Data folders
(pretrained/models, train/presets) are packages too, so the build names them all."""

from pathlib import Path

from setuptools import find_namespace_packages, setup

TEMPLATE = "neurocnnf.workflow.template"
WORKFLOWS = Path(__file__).parent / "workflows"
FOLDERS = sorted(p.relative_to(WORKFLOWS) for p in WORKFLOWS.rglob("*")
                 if p.is_dir() and p.name != "__pycache__" and not p.name.startswith("."))

setup(
    packages=find_namespace_packages(include=["neurocnnf*"], exclude=["*__pycache__"])
    + [TEMPLATE] + [".".join((TEMPLATE, *folder.parts)) for folder in FOLDERS],
    package_dir={TEMPLATE: "workflows"},
    package_data={TEMPLATE: ["*"], **{".".join((TEMPLATE, *f.parts)): ["*"] for f in FOLDERS}},
)
