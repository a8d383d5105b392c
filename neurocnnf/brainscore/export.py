"""Write a Brain-Score plugin folder (models/<identifier>/ of the brain-score/vision repository).

The folder: ``__init__.py`` (``model_registry['<identifier>']``, the literal line Brain-Score's
loader and CI search for), ``model.py`` (get_model / get_layers / get_bibtex /
get_brain_model), ``test.py``, ``metadata.yml``, ``requirements.txt`` (published packages
only), ``region_layer_map/<identifier>.json``, ``cnnf_runtime/`` (the inference code,
generated from this package by ``vendor``) and ``export.json`` (how it was exported: the
workflow report reads it). Weights: a URL + sha256 (submittable) or, without a URL, the
checkpoint's absolute path (local only, not submittable).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from neurocnnf.brainscore.regions import default_region_layer_map
from neurocnnf.brainscore.unrolled import Unrolled
from neurocnnf.brainscore.vendor import vendor
from neurocnnf.data.download import file_digest
from neurocnnf.train.checkpoint import LoadedCheckpoint, load_checkpoint, resolve_checkpoint

EXPORT_RECORD = "export.json"
BIBTEX = """@inproceedings{huang2020neural,
  title={Neural Networks with Recurrent Generative Feedback},
  author={Huang, Yujia and Gornet, James and Dai, Sihui and Yu, Zhiding and Nguyen, Tan and
          Tsao, Doris Y. and Anandkumar, Anima},
  booktitle={Advances in Neural Information Processing Systems (NeurIPS)},
  year={2020}
}"""

INIT = '''from brainscore_vision import model_registry

from .model import get_brain_model

model_registry['{identifier}'] = lambda: get_brain_model('{identifier}')
'''

MODEL = '''"""CNN-F {identifier}: a Brain-Score plugin exported by neurocnnf {version}.

Weights: {weights_note}
"""

import json
from pathlib import Path

from {runtime}.brainscore import plugin

IDENTIFIER = {identifier!r}
WEIGHTS_URL = {url!r}
WEIGHTS_SHA256 = {sha256!r}
WEIGHTS_PATH = {local!r}
ITERATIONS = {iterations}
CLASS_NAMES = {class_names!r}
LAYERS = {layers!r}
BIBTEX = {bibtex!r}
HERE = Path(__file__).parent


def region_layer_map() -> dict:
    return json.loads((HERE / "region_layer_map" / f"{{IDENTIFIER}}.json").read_text())


def weights() -> Path:
    return plugin.weights_path(IDENTIFIER, WEIGHTS_URL, WEIGHTS_SHA256, WEIGHTS_PATH)


def get_model(name):
    """The activations model (Brain-Score PytorchWrapper; layers '<layer>-t<iteration>')."""
    assert name == IDENTIFIER
    return plugin.get_model(IDENTIFIER, weights(), ITERATIONS)


def get_brain_model(name):
    """The committed BrainModel: region -> layer, time bin -> iterations."""
    assert name == IDENTIFIER
    return plugin.get_brain_model(IDENTIFIER, weights(), ITERATIONS, region_layer_map(),
                                  CLASS_NAMES)


def get_layers(name):
    assert name == IDENTIFIER
    return LAYERS


def get_bibtex(model_identifier):
    return BIBTEX
'''

TEST = '''from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import brainscore_vision
from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet


@pytest.fixture(scope="module")
def model():
    return brainscore_vision.load_model({identifier!r})


def test_identifier(model):
    assert model.identifier == {identifier!r}


def test_it_responses_change_with_the_feedback(model, tmp_path):
    ids = [f"image{{i}}" for i in range(3)]
    stimuli = StimulusSet({{"stimulus_id": ids, "object_name": ["noise"] * 3}})
    stimuli.stimulus_paths = {{}}
    for i, stimulus_id in enumerate(ids):
        path = tmp_path / f"{{stimulus_id}}.png"
        pixels = np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        stimuli.stimulus_paths[stimulus_id] = str(path)
    stimuli.identifier = "{identifier}-plugin-test"
    model.start_task("passive")
    model.start_recording("IT", [(70, 110), (190, 230)])
    responses = model.look_at(stimuli)
    assert responses.dims == ("presentation", "neuroid", "time_bin")
    assert not np.allclose(responses.isel(time_bin=0).values, responses.isel(time_bin=1).values)
'''

METADATA = """models:
  {identifier}:
    architecture: DCNN
    model_family: CNN-F
    total_parameter_count: {parameters}
    trainable_parameter_count: {parameters}
    total_layers: {layers}
    trainable_layers: {layers}
    model_size_mb: {size_mb:.2f}
    training_dataset: {dataset}
    task_specialization: classification
    brainscore_link: null
    huggingface_link: null
    extra_notes: "CNN with recurrent generative feedback (Huang et al. 2020), T={iterations}"
"""


def plugin_identifier(checkpoint: Path, iterations: int, arch: str) -> str:
    """A Python-importable identifier that changes when the weights change."""
    name = f"cnnf_{arch}_t{iterations}_{file_digest(checkpoint)[:10]}"
    return re.sub(r"[^0-9a-zA-Z_]", "_", name)


def _dataset(metadata: dict) -> str:
    """The training dataset named in a checkpoint's metadata ("unknown" if none)."""
    return str(metadata.get("config", {}).get("data", {}).get("dataset", "unknown"))


def class_names(metadata: dict, num_classes: int) -> list[str] | None:
    """The model's classes in logit order, from its training config (None if unknown)."""
    from neurocnnf.data.datasets import CIFAR10_CLASSES, FASHION_MNIST_CLASSES

    names = {"fashion_mnist": FASHION_MNIST_CLASSES, "cifar10": CIFAR10_CLASSES}.get(
        _dataset(metadata).replace("-", "_").lower())
    return list(names) if names and len(names) == num_classes else None


def export_plugin(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    weights_url: str | None = None,
    identifier: str | None = None,
    iterations: int | None = None,
    region_layer_map: dict[str, str] | None = None,
    package_url: str | None = None,
) -> Path:
    """Write the plugin folder ``out/<identifier>/`` and return it.

    ``weights_url``: where the checkpoint is published (its sha256 is recorded and checked on
    download); without it the plugin is local only (loads the checkpoint from its absolute
    path) and not submittable. ``package_url``: depend on ``neurocnnf @ <package_url>`` instead
    of carrying a generated copy of the inference code.
    """
    checkpoint = resolve_checkpoint(checkpoint).resolve()
    loaded = load_checkpoint(checkpoint)
    model = loaded.model
    steps = model.iterations if iterations is None else iterations
    arch = model.config["arch"]
    identifier = identifier or plugin_identifier(checkpoint, steps, arch)
    if not identifier.isidentifier():
        raise ValueError(f"plugin identifier {identifier!r} must be a Python identifier "
                         "(letters, digits, _)")
    folder = Path(out) / identifier
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{identifier}."))
    staging.chmod(0o755)  # mkdtemp makes it private; a plugin folder is shared
    try:
        _write(staging, loaded, identifier, steps, weights_url, region_layer_map,
               package_url)
        if folder.exists():  # replace a previous export only once the new one is complete
            previous = folder.rename(staging.with_name(staging.name + ".old"))
            staging.rename(folder)
            shutil.rmtree(previous)
        else:
            staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write(folder: Path, loaded: LoadedCheckpoint, identifier: str, steps: int,
           weights_url: str | None, region_layer_map: dict[str, str] | None,
           package_url: str | None) -> None:
    from neurocnnf import __version__

    model, checkpoint = loaded.model, loaded.path

    arch = model.config["arch"]
    (folder / "region_layer_map").mkdir()
    if package_url:
        runtime, requirements = "neurocnnf", [f"neurocnnf @ {package_url}"]
    else:
        code, requirements = vendor(folder)
        runtime = f".{code.name}"
    layers = [n for n in Unrolled(model, steps).layer_names() if not n.startswith("logits-t")]
    mapping = region_layer_map or default_region_layer_map(arch, model.taps)
    (folder / "region_layer_map" / f"{identifier}.json").write_text(json.dumps(mapping, indent=2))
    (folder / "__init__.py").write_text(INIT.format(identifier=identifier))
    sha256 = file_digest(checkpoint)
    note = (f"downloaded from {weights_url} (sha256 checked)" if weights_url else
            f"local only, not submittable: read from {checkpoint}")
    (folder / "model.py").write_text(MODEL.format(
        identifier=identifier, version=__version__, weights_note=note, runtime=runtime,
        url=weights_url, sha256=sha256, local=None if weights_url else str(checkpoint),
        iterations=steps, class_names=class_names(loaded.metadata, model.num_classes),
        layers=layers, bibtex=BIBTEX))
    (folder / "test.py").write_text(TEST.format(identifier=identifier))
    parameters = sum(p.numel() for p in model.parameters())
    (folder / "metadata.yml").write_text(METADATA.format(
        identifier=identifier, parameters=parameters, layers=len(model.taps),
        size_mb=checkpoint.stat().st_size / 2**20, dataset=_dataset(loaded.metadata),
        iterations=steps))
    (folder / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    (folder / EXPORT_RECORD).write_text(json.dumps({
        "identifier": identifier, "submittable": weights_url is not None,
        "weights_url": weights_url, "weights_sha256": sha256, "runtime": runtime,
        "neurocnnf": __version__}, indent=2))
