"""Write a Brain-Score plugin folder (models/<identifier>/ of the brain-score/vision repository).

The folder: ``__init__.py`` (``model_registry['<identifier>']``, the literal line Brain-Score's
loader and CI search for), ``model.py`` (get_model / get_layers / get_bibtex /
get_brain_model), ``test.py``, ``metadata.yml``, ``requirements.txt`` (published packages
only), ``region_layer_map/<identifier>.json``, ``cnnf_runtime/`` (the inference code,
generated from this package by ``vendor``) and ``export.json`` (how it was exported: the
workflow report reads it: ``status`` says whether the plugin is submittable). Weights: a
public URL, downloaded once at export and checked against the checkpoint's sha256
(submittable), or, without a URL, the checkpoint's absolute path (local only, not
submittable; ``publish`` classifies and verifies the URL).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from neurocnnf.activations.timebins import MODES
from neurocnnf.brainscore.publish import local_reason, verify_weights_url, weights_status
from neurocnnf.brainscore.regions import default_region_layer_map
from neurocnnf.brainscore.unrolled import Unrolled
from neurocnnf.brainscore.vendor import RUNTIME, vendor
from neurocnnf.data.download import file_digest
from neurocnnf.models import resolve_iterations
from neurocnnf.train.checkpoint import LoadedCheckpoint, load_checkpoint, resolve_checkpoint
from neurocnnf.version import __version__

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
TIME_MODE = {time_mode!r}
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


def get_brain_model(name, time_mode=TIME_MODE):
    """The committed BrainModel: region -> layer, time bin -> iterations ("overlap": the
    iterations overlapping a bin, weighted by the overlap; "nearest": the nearest one)."""
    assert name == IDENTIFIER
    return plugin.get_brain_model(IDENTIFIER, weights(), ITERATIONS, region_layer_map(),
                                  CLASS_NAMES, time_mode)


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

PAPER = "Huang et al. (2020), Neural Networks with Recurrent Generative Feedback, NeurIPS 33"
DATASET_NAMES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def model_metadata(identifier: str, model, dataset: str, iterations: int) -> dict:
    """metadata.yml, schema 2.0 (brainscore_core.metadata): only what the submitter knows and
    Brain-Score does not compute. Left to Brain-Score: the ``legacy`` counts (computed from
    the loaded model), the visual degrees (scoring configuration) and any "verified" status
    (a reviewer's)."""
    channels, height, width = model.input_shape
    return {"schema_version": "2.0", "domain": "vision", "models": {identifier: {
        "model": {
            "display_name": f"CNN-F {model.config['arch']}, T = {iterations}",
            "architecture": {
                "family": "convolutional_neural_network",
                "description": "CNN with recurrent generative feedback (CNN-F), run for "
                               f"T = {iterations} feedback iteration(s) after the feedforward "
                               "sweep; each feeds a generative reconstruction back and runs a "
                               "new bottom-up pass"},
            "recurrent": True,
            "input_resolution": {"channels": channels, "height": height, "width": width},
            "supervision": {"type": "supervised",
                            "description": "classification (cross-entropy) with a "
                                           "reconstruction loss on the feedback"}},
        "data": {"training_datasets": [{"identifier": "other", "role": "training",
                                        "name": DATASET_NAMES.get(_key(dataset), dataset)}]},
        "sources": {"paper": {"kind": "paper", "citation": PAPER}},
        "assertions": [{"path": "/model/architecture", "status": "probable",
                        "sources": ["paper"]},
                       {"path": "/model/recurrent", "status": "probable",
                        "sources": ["paper"]}]}}}


def plugin_identifier(checkpoint: Path, iterations: int, arch: str) -> str:
    """A Python-importable identifier that changes when the weights change."""
    name = f"cnnf_{arch}_t{iterations}_{file_digest(checkpoint)[:10]}"
    return re.sub(r"[^0-9a-zA-Z_]", "_", name)


def _dataset(metadata: dict) -> str:
    """The training dataset named in a checkpoint's metadata ("unknown" if none)."""
    return str(metadata.get("config", {}).get("data", {}).get("dataset", "unknown"))


def _key(dataset: str) -> str:
    return dataset.replace("-", "_").lower()


def class_names(metadata: dict, num_classes: int) -> list[str] | None:
    """The model's classes in logit order, from its training config (None if unknown)."""
    from neurocnnf.data.datasets import CIFAR10_CLASSES, FASHION_MNIST_CLASSES

    names = {"fashion_mnist": FASHION_MNIST_CLASSES, "cifar10": CIFAR10_CLASSES}.get(
        _key(_dataset(metadata)))
    return list(names) if names and len(names) == num_classes else None


def export_plugin(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    weights_url: str | None = None,
    identifier: str | None = None,
    iterations: int | None = None,
    region_layer_map: dict[str, str] | None = None,
    package_url: str | None = None,
    verify_weights: bool = True,
    time_mode: str = "overlap",
    metadata: bool = True,
) -> Path:
    """Write the plugin folder ``out/<identifier>/`` and return it.

    ``weights_url``: where the checkpoint is published (its sha256 is recorded and checked on
    download); it is downloaded once here and checked (``verify_weights``; a failure raises
    ``WeightsUrlError``). Without it the plugin is local only (loads the checkpoint from its
    absolute path) and not submittable; so is a file://, loopback or private-network URL.
    ``package_url``: depend on ``neurocnnf @ <package_url>`` instead of carrying a generated
    copy of the inference code. ``time_mode``: the plugin's default time-bin answer.
    ``metadata``: write metadata.yml (brainscore_core 2.5 sends any pull request with one to a
    maintainer's review; without one, Brain-Score generates it after the merge).
    """
    checkpoint = resolve_checkpoint(checkpoint).resolve()
    loaded = load_checkpoint(checkpoint)
    model = loaded.model
    iterations = resolve_iterations(model, iterations)
    arch = model.config["arch"]
    identifier = identifier or plugin_identifier(checkpoint, iterations, arch)
    if not identifier.isidentifier():
        raise ValueError(f"plugin identifier {identifier!r} must be a Python identifier "
                         "(letters, digits, _)")
    if time_mode not in MODES:
        raise ValueError(f"unknown time-bin mode {time_mode!r}; choose from {list(MODES)}")
    sha256 = file_digest(checkpoint)
    verified = False
    if weights_url is not None:
        local_reason(weights_url)  # raises for a URL that is not file:// or http(s)://
        if verify_weights:
            verify_weights_url(weights_url, sha256)
            verified = True
    submittable, status = weights_status(weights_url, verified)
    folder = Path(out) / identifier
    with staged_folder(folder) as staging:
        _write(staging, loaded, identifier, iterations, weights_url, sha256, region_layer_map,
               package_url, time_mode)
        if metadata:
            (staging / "metadata.yml").write_text(yaml.safe_dump(model_metadata(
                identifier, model, _dataset(loaded.metadata), iterations), sort_keys=False))
        (staging / EXPORT_RECORD).write_text(json.dumps({
            "identifier": identifier, "submittable": submittable, "status": status,
            "weights_url": weights_url, "weights_sha256": sha256,
            "weights_verified": verified, "time_mode": time_mode,
            "runtime": "neurocnnf" if package_url else RUNTIME,
            "neurocnnf": __version__}, indent=2))
    return folder


@contextlib.contextmanager
def staged_folder(folder: Path) -> Iterator[Path]:
    """A temporary sibling of ``folder`` to write into; it replaces ``folder`` (a previous
    export included) only once the block completes."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    staging.chmod(0o755)  # mkdtemp makes it private; a plugin folder is shared
    try:
        yield staging
        if folder.exists():
            previous = folder.rename(staging.with_name(staging.name + ".old"))
            staging.rename(folder)
            shutil.rmtree(previous)
        else:
            staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write(folder: Path, loaded: LoadedCheckpoint, identifier: str, iterations: int,
           weights_url: str | None, sha256: str, region_layer_map: dict[str, str] | None,
           package_url: str | None, time_mode: str) -> None:
    model, checkpoint = loaded.model, loaded.path

    arch = model.config["arch"]
    (folder / "region_layer_map").mkdir()
    if package_url:
        runtime, requirements = "neurocnnf", [f"neurocnnf @ {package_url}"]
    else:
        code, requirements = vendor(folder)
        runtime = f".{code.name}"
    layers = [n for n in Unrolled(model, iterations).layer_names() if not n.startswith("logits-t")]
    mapping = region_layer_map or default_region_layer_map(arch, model.taps)
    (folder / "region_layer_map" / f"{identifier}.json").write_text(json.dumps(mapping, indent=2))
    (folder / "__init__.py").write_text(INIT.format(identifier=identifier))
    note = (f"downloaded from {weights_url} (sha256 checked)" if weights_url else
            f"local only, not submittable: read from {checkpoint}")
    (folder / "model.py").write_text(MODEL.format(
        identifier=identifier, version=__version__, weights_note=note, runtime=runtime,
        url=weights_url, sha256=sha256,
        local=None if weights_url else str(checkpoint), iterations=iterations,
        time_mode=time_mode, class_names=class_names(loaded.metadata, model.num_classes),
        layers=layers, bibtex=BIBTEX))
    (folder / "test.py").write_text(TEST.format(identifier=identifier))
    (folder / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
