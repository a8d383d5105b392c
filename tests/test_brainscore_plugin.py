"""The exported plugin inside a copy of Brain-Score, as its loader and CI see it (run in
.venv-brainscore; skipped where brainscore_vision is not installed).

The installed ``brainscore_vision`` package is copied (hard links) into a temporary folder, the
plugin goes into its ``models/``, and fresh interpreters with ``neurocnnf`` hidden run
``load_model(id)`` through Brain-Score's own lookup, the plugin's ``test.py`` and Brain-Score's
generic plugin tests. The wheel lacks the generic tests' three images: they are written in."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

brainscore_vision = pytest.importorskip("brainscore_vision")

from neurocnnf.brainscore.export import export_plugin  # noqa: E402
from neurocnnf.models import fmnist_small  # noqa: E402
from neurocnnf.train import save_model  # noqa: E402

# what the export may write into requirements.txt: published distributions only
ALLOWED = {"torch", "numpy", "pillow", "safetensors", "tqdm"}
HIDE_NEUROCNNF = '''import importlib.abc, sys

class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "neurocnnf" or name.startswith("neurocnnf."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
        return None

sys.meta_path.insert(0, _Hide())
'''


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = fmnist_small(iterations=2).eval()
    path = tmp_path_factory.mktemp("run") / "best.safetensors"
    save_model(model, path, epoch=1, config={"data": {"dataset": "fashion_mnist"}})
    return path


@pytest.fixture(scope="module")
def library(tmp_path_factory, checkpoint):
    """(root, plugin folder): a copy of brainscore_vision with the exported plugin in models/."""
    root = tmp_path_factory.mktemp("vision")
    installed = Path(brainscore_vision.__file__).parent
    shutil.copytree(installed, root / "brainscore_vision", copy_function=_link_or_copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    resources = root / "brainscore_vision" / "model_helpers" / "generic_plugin_tests_resources"
    resources.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for name in ("rgb1.jpg", "rgb2.jpg", "rgb3.png"):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(resources / name)
    plugin = export_plugin(checkpoint, root / "brainscore_vision" / "models")
    (root / "hide").mkdir()
    (root / "hide" / "sitecustomize.py").write_text(HIDE_NEUROCNNF)
    return root, plugin


def _run(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """A fresh interpreter: the copied library first on the path, neurocnnf hidden."""
    env = dict(os.environ, PYTHONPATH=f"{root / 'hide'}{os.pathsep}{root}",
               BS_INSTALL_DEPENDENCIES="no", RESULTCACHING_DISABLE="1",
               RESULTCACHING_HOME=str(root / "cache"), NEUROCNNF_CACHE=str(root / "cache"),
               OMP_NUM_THREADS="1")
    env.pop("NEUROCNNF_WEIGHTS", None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd or root, env=env)


@pytest.mark.slow
def test_brainscore_loads_the_plugin_and_its_own_tests_pass(library):
    root, plugin = library
    identifier = plugin.name
    code = (
        "import os, sys, brainscore_vision\n"
        "try:\n    import neurocnnf\nexcept ModuleNotFoundError:\n    pass\n"
        "else:\n    sys.exit('neurocnnf is importable')\n"
        f"assert brainscore_vision.__file__.startswith({str(root)!r}), brainscore_vision.__file__\n"
        "from brainscore_core.plugin_management.parse_plugin_changes import get_plugin_ids\n"
        f"ids = get_plugin_ids('models', [{identifier!r}], os.path.dirname("
        "brainscore_vision.__file__))\n"
        "before = {k: os.environ.get(k) for k in ('BS_INSTALL_DEPENDENCIES', 'RESULTCACHING_HOME',"
        " 'BRAINIO_HOME')}\n"
        f"model = brainscore_vision.load_model({identifier!r})\n"
        "after = {k: os.environ.get(k) for k in before}\n"
        "changed = {k: (before[k], after[k]) for k in before if before[k] is not None and "
        "before[k] != after[k]}\n"
        "model.start_recording('IT', [(70, 170)])\n"
        "print(ids, model.identifier, type(model).__module__, changed, model.visual_degrees())\n"
    )
    done = _run(root, "-c", code, cwd=root.parent)  # the weights path is absolute
    assert done.returncode == 0, done.stderr[-3000:]
    ids, name, module, changed, degrees = done.stdout.strip().splitlines()[-1].split(" ", 4)
    assert ids == f"['{identifier}']"  # CI reads the id out of the registration line
    assert name == identifier
    assert module.startswith(f"brainscore_vision.models.{identifier}.cnnf_runtime")
    assert changed.startswith("{}")  # loading changed no variable the user had set

    own = _run(root, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin / "test.py"))
    assert own.returncode == 0, own.stdout[-3000:] + own.stderr[-2000:]
    assert re.search(r"2 passed", own.stdout), own.stdout[-1000:]

    generic = root / "brainscore_vision" / "model_helpers" / "generic_plugin_tests.py"
    done = _run(root, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(generic),
                "--plugin_directory", str(plugin), "-m", "not slow")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b5 passed", done.stdout), done.stdout[-1000:]  # all five ran


def test_requirements_are_published_packages_only(library, checkpoint, tmp_path):
    from packaging.requirements import Requirement

    _, plugin = library
    names = [Requirement(line).name.lower()
             for line in (plugin / "requirements.txt").read_text().splitlines() if line.strip()]
    assert names and set(names) <= ALLOWED, names
    assert "torch" in names
    url = "git+https://github.com/example/neurocnnf@v0.1.0"
    with_package = export_plugin(checkpoint, tmp_path, package_url=url)
    lines = (with_package / "requirements.txt").read_text().splitlines()
    parsed = [Requirement(line) for line in lines]
    assert [(r.name, r.url) for r in parsed] == [("neurocnnf", url)]
    assert not (with_package / "cnnf_runtime").exists()
    assert "from neurocnnf.brainscore import plugin" in (with_package / "model.py").read_text()


def test_registration_is_a_quoted_literal_and_metadata_is_written(library):
    _, plugin = library
    init = (plugin / "__init__.py").read_text()
    assert re.findall(r"model_registry\['(\w+)'\]", init) == [plugin.name]
    assert (plugin / "metadata.yml").exists() and not (plugin / "metadata.yaml").exists()
    import yaml

    metadata = yaml.safe_load((plugin / "metadata.yml").read_text())
    assert metadata["models"][plugin.name]["model_family"] == "CNN-F"


def test_the_plugin_code_is_generated_from_the_package(library):
    import neurocnnf

    _, plugin = library
    generated = (plugin / "cnnf_runtime" / "models" / "engine.py").read_text()
    original = (Path(neurocnnf.__file__).parent / "models" / "engine.py").read_text()
    assert generated.splitlines()[0].startswith("# Generated by neurocnnf")
    imports = [line for line in generated.splitlines()[1:] if "import" in line]
    assert imports and not any("neurocnnf" in line for line in imports)
    body = [line for line in original.splitlines() if "neurocnnf" not in line]
    assert all(line in generated.splitlines() for line in body)


def test_the_report_says_whether_a_plugin_can_be_submitted(checkpoint, tmp_path):
    from neurocnnf.pipelines.layout import ResultsLayout
    from neurocnnf.pipelines.report import brainscore_blocks

    layout = ResultsLayout(tmp_path)
    plugins = layout.brainscore_plugins
    local = export_plugin(checkpoint, plugins)
    text = " ".join(str(b.content) for b in brainscore_blocks(layout) if b.kind == "text")
    assert f"`{local.name}`: local only, not submittable" in text
    export_plugin(checkpoint, plugins, weights_url="https://example.org/w.safetensors")
    text = " ".join(str(b.content) for b in brainscore_blocks(layout) if b.kind == "text")
    assert "submittable (weights at https://example.org/w.safetensors)" in text
    assert "local only" not in text  # the new export replaced the local one
