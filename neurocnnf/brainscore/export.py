"""Write a Brain-Score plugin folder (models/<identifier>/ of the brain-score/vision repository).

The folder holds only what loading the model needs: ``__init__.py`` (registers the model),
``model.py`` (get_model / get_layers / get_bibtex / get_brain_model), ``test.py``,
``metadata.yaml``, ``requirements.txt`` and ``region_layer_map/<identifier>.json``. Weights
are referenced by URL and sha256 (``NEUROCNNF_WEIGHTS`` may point at a local copy).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from neurocnnf.brainscore.regions import default_region_layer_map
from neurocnnf.brainscore.unrolled import Unrolled
from neurocnnf.data.download import file_digest
from neurocnnf.train.checkpoint import load_model, resolve_checkpoint

BIBTEX = """@inproceedings{huang2020neural,
  title={Neural Networks with Recurrent Generative Feedback},
  author={Huang, Yujia and Gornet, James and Dai, Sihui and Yu, Zhiding and Nguyen, Tan and
          Tsao, Doris Y. and Anandkumar, Anima},
  booktitle={Advances in Neural Information Processing Systems (NeurIPS)},
  year={2020}
}"""

INIT = '''from brainscore_vision import model_registry

from .model import IDENTIFIER, get_brain_model

model_registry[IDENTIFIER] = lambda: get_brain_model(IDENTIFIER)
'''

MODEL = '''"""CNN-F {identifier}: exported by neurocnnf {version}."""

import hashlib
import json
import os
import urllib.request
from pathlib import Path

IDENTIFIER = {identifier!r}
WEIGHTS_URL = {url!r}
WEIGHTS_SHA256 = {sha256!r}
ITERATIONS = {iterations}
BIBTEX = {bibtex!r}
HERE = Path(__file__).parent


def weights_path() -> Path:
    """The checkpoint: NEUROCNNF_WEIGHTS if set, else downloaded once and verified."""
    local = os.environ.get("NEUROCNNF_WEIGHTS")
    cache = Path.home() / ".cache" / "neurocnnf"
    path = Path(local) if local else cache / f"{{IDENTIFIER}}.safetensors"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        urllib.request.urlretrieve(WEIGHTS_URL, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"{{path}}: sha256 {{digest}} is not the published {{WEIGHTS_SHA256}}")
    return path


def region_layer_map() -> dict:
    return json.loads((HERE / "region_layer_map" / f"{{IDENTIFIER}}.json").read_text())


def _model():
    from neurocnnf.train import load_model

    return load_model(weights_path())


def get_model(name):
    """The activations model (Brain-Score PytorchWrapper; layers '<layer>-t<iteration>')."""
    assert name == IDENTIFIER
    from neurocnnf.brainscore.commitment import activations_model

    return activations_model(_model(), IDENTIFIER, ITERATIONS)


def get_brain_model(name):
    """The committed BrainModel: region -> layer, time bin -> iteration."""
    assert name == IDENTIFIER
    from neurocnnf.brainscore.commitment import make_brain_model

    return make_brain_model(_model(), IDENTIFIER, region_layer_map(), iterations=ITERATIONS)


def get_layers(name):
    assert name == IDENTIFIER
    return {layers!r}


def get_bibtex(model_identifier):
    return BIBTEX
'''

TEST = '''import pytest

import brainscore_vision


@pytest.mark.travis_slow
def test_has_identifier():
    model = brainscore_vision.load_model({identifier!r})
    assert model.identifier == {identifier!r}
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


def export_plugin(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    url: str | None = None,
    identifier: str | None = None,
    iterations: int | None = None,
    region_layer_map: dict[str, str] | None = None,
) -> Path:
    """Write the plugin folder ``out/<identifier>/`` and return it."""
    from neurocnnf import __version__

    checkpoint = resolve_checkpoint(checkpoint)
    model = load_model(checkpoint)
    steps = model.iterations if iterations is None else iterations
    arch = model.config["arch"]
    identifier = identifier or plugin_identifier(checkpoint, steps, arch)
    folder = Path(out) / identifier
    (folder / "region_layer_map").mkdir(parents=True, exist_ok=True)
    layers = [n for n in Unrolled(model, steps).layer_names() if not n.startswith("logits-t")]
    mapping = region_layer_map or default_region_layer_map(arch, model.taps)
    (folder / "region_layer_map" / f"{identifier}.json").write_text(json.dumps(mapping, indent=2))
    (folder / "__init__.py").write_text(INIT)
    (folder / "model.py").write_text(MODEL.format(
        identifier=identifier, version=__version__, url=url or f"file://{checkpoint}",
        sha256=file_digest(checkpoint), iterations=steps, bibtex=BIBTEX, layers=layers))
    (folder / "test.py").write_text(TEST.format(identifier=identifier))
    parameters = sum(p.numel() for p in model.parameters())
    dataset = (getattr(model, "checkpoint_metadata", {}).get("config", {}).get("data", {})
               .get("dataset", "unknown"))
    (folder / "metadata.yaml").write_text(METADATA.format(
        identifier=identifier, parameters=parameters, layers=len(model.taps),
        size_mb=checkpoint.stat().st_size / 2**20, dataset=dataset, iterations=steps))
    (folder / "requirements.txt").write_text(f"neurocnnf=={__version__}\ntorch\nsafetensors\n")
    return folder
