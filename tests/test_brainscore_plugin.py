"""The exported plugin inside a copy of Brain-Score, as its loader and CI see it (run in
.venv-brainscore; skipped where brainscore_vision is not installed).

The installed ``brainscore_vision`` package is copied (hard links) into a temporary folder, the
plugin goes into its ``models/``, and fresh interpreters with ``neurocnnf`` hidden run
``load_model(id)`` through Brain-Score's own lookup, the plugin's ``test.py`` and Brain-Score's
generic plugin tests. The wheel lacks the generic tests' three images: they are written in.
Benchmark data lives on S3, out of reach here: a benchmark built as MajajHong2015's is (its
NeuralBenchmark, PLS metric and internal-consistency ceiling) on a local assembly in its format
goes into ``benchmarks/``, registered by the literal line Brain-Score's loader searches for, so
that ``brainscore_vision.score`` runs the whole path, memory pre-allocation included. The
Algonauts 2019 benchmark plugin (real RDMs from the data roots) and a small torch CNN wrapped by
Brain-Score itself go in too: Brain-Score scores both models on it, and the values are checked
against the package's own RSA."""

import json
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

from neurocnnf.analysis.rsa import compare, evaluate, rdm  # noqa: E402
from neurocnnf.brainscore.benchmark_export import NAME, export_benchmarks  # noqa: E402
from neurocnnf.brainscore.commitment import make_brain_model  # noqa: E402
from neurocnnf.brainscore.export import export_plugin  # noqa: E402
from neurocnnf.brainscore.rdm_benchmark import BENCHMARKS  # noqa: E402
from neurocnnf.brainscore.scoring import save_assembly  # noqa: E402
from neurocnnf.data import roots  # noqa: E402
from neurocnnf.data.brain import load_brain_rdms  # noqa: E402
from neurocnnf.models import build_model, fmnist_small  # noqa: E402
from neurocnnf.train import load_model, save_model  # noqa: E402

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
BENCHMARK = "NeurocnnfLocal2015.IT-pls"
# MajajHong2015's construction (benchmarks/majajhong2015/benchmark.py) on a local assembly
BENCHMARK_PLUGIN = '''from pathlib import Path

import xarray as xr
from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet
from brainscore_vision import benchmark_registry, load_ceiling, load_metric
from brainscore_vision.benchmark_helpers.neural_common import NeuralBenchmark, average_repetition

HERE = Path(__file__).parent


def majajhong_format(region):
    repetitions = NeuroidAssembly(xr.load_dataarray(HERE / "assembly.nc")).squeeze("time_bin")
    table = repetitions[{"presentation": repetitions["repetition"].values == 0}]
    stimuli = StimulusSet({"stimulus_id": table["stimulus_id"].values,
                           "object_name": table["object_name"].values})
    stimuli.stimulus_paths = {s: str(HERE / p) for s, p in zip(table["stimulus_id"].values,
                                                               table["stimulus_path"].values)}
    stimuli.identifier = "NeurocnnfLocal2015"
    repetitions.attrs["stimulus_set"] = stimuli
    assembly = average_repetition(repetitions)
    assembly.attrs["stimulus_set"] = stimuli
    return NeuralBenchmark(
        identifier=f"NeurocnnfLocal2015.{region}-pls", version=1, assembly=assembly,
        similarity_metric=load_metric("pls", crossvalidation_kwargs=dict(
            stratification_coord="object_name")),
        visual_degrees=8, number_of_trials=50,
        ceiling_func=lambda: load_ceiling("internal_consistency")(repetitions),
        parent=region, bibtex=None)


benchmark_registry["NeurocnnfLocal2015.IT-pls"] = lambda: majajhong_format("IT")
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
    _benchmark_plugin(root / "brainscore_vision" / "benchmarks" / "neurocnnf_local2015",
                      checkpoint)
    return root, plugin


@pytest.fixture(scope="module")
def colour_plugin(library, tmp_path_factory):
    """The natural-image CNN-F's plugin (a freshly built, untrained vgg6: 3 x 32 x 32 colour)
    in the same copy of Brain-Score."""
    root, _ = library
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg6") / "last.safetensors"
    save_model(build_model("vgg6").eval(), path, epoch=1, config={"data": {"dataset": "cifar10"}})
    return export_plugin(path, root / "brainscore_vision" / "models", time_mode="nearest")


def _benchmark_plugin(folder: Path, checkpoint: Path) -> None:
    """MajajHong2015-format IT data (64 images x 2 repetitions x 30 sites, 70-170 ms): a
    linear map of the model's IT responses plus noise, written with its benchmark plugin."""
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    ids = [f"img{i:02d}" for i in range(64)]
    for stimulus_id in ids:
        image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(image).resize((64, 64)).save(folder / "images" / f"{stimulus_id}.png")
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

    stimuli = StimulusSet({"stimulus_id": ids})
    stimuli.stimulus_paths = {s: str(folder / "images" / f"{s}.png") for s in ids}
    stimuli.identifier = None  # nothing goes into the result cache
    brain_model = make_brain_model(load_model(checkpoint), "build")
    brain_model.start_recording("IT", [(70, 170)])
    features = brain_model.look_at(stimuli).values
    centred = features - features.mean(0)
    axes = np.linalg.svd(centred, full_matrices=False)[2][:8]
    mapped = centred @ axes.T @ rng.standard_normal((8, 30))
    data = np.concatenate([mapped + 0.2 * mapped.std() * rng.standard_normal(mapped.shape)
                           for _ in range(2)])
    assembly = NeuroidAssembly(data[..., None], coords={
        "stimulus_id": ("presentation", ids * 2),
        "object_name": ("presentation", [f"obj{i % 4}" for i in range(64)] * 2),
        "repetition": ("presentation", np.repeat([0, 1], 64)),
        "stimulus_path": ("presentation", [f"images/{s}.png" for s in ids] * 2),
        "neuroid_id": ("neuroid", [f"n{i}" for i in range(30)]),
        "region": ("neuroid", ["IT"] * 30),
        "time_bin_start": ("time_bin", [70]), "time_bin_end": ("time_bin", [170]),
    }, dims=["presentation", "neuroid", "time_bin"])
    save_assembly(assembly, folder / "assembly.nc")
    (folder / "__init__.py").write_text(BENCHMARK_PLUGIN)


def _run(root: Path, *args: str, cwd: Path | None = None, hide: bool = True,
         **variables: str | None) -> subprocess.CompletedProcess:
    """A fresh interpreter: the copied library first on the path, neurocnnf hidden (unless
    ``hide`` is False); ``variables`` set (None: unset) environment variables."""
    path = [str(root / "hide")] * hide + [str(root)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), BS_INSTALL_DEPENDENCIES="no",
               RESULTCACHING_DISABLE="1", RESULTCACHING_HOME=str(root / "cache"),
               NEUROCNNF_CACHE=str(root / "cache"), OMP_NUM_THREADS="1")
    for name in ("NEUROCNNF_WEIGHTS", "BRAINSCORE_SKIP_MEMORY_CHECK"):
        env.pop(name, None)
    for name, value in variables.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd or root, env=env)


def _last_json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _preflight(stdout: str) -> dict:
    """The line Brain-Score's memory pre-allocation prints (absent when it is skipped)."""
    found = re.search(r"^BRAINSCORE_PREFLIGHT (\{.*\})$", stdout, re.MULTILINE)
    assert found, f"no memory pre-allocation ran:\n{stdout[-2000:]}"
    return json.loads(found.group(1))


@pytest.fixture(scope="module")
def plugin_score(library):
    """(stdout, score) of ``brainscore_vision.score(plugin, BENCHMARK)`` in a fresh
    interpreter without neurocnnf, the memory pre-allocation on."""
    root, plugin = library
    code = ("import json, brainscore_vision\n"
            f"score = brainscore_vision.score({plugin.name!r}, {BENCHMARK!r})\n"
            "print(json.dumps({'score': float(score), 'raw': float(score.raw), "
            "'ceiling': float(score.ceiling)}))\n")
    done = _run(root, "-c", code, cwd=root.parent)
    return done.stdout, _last_json(done)


PROBE = '''import json, os, sys
import numpy as np
import brainscore_vision
from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

grey_id, colour_id, folder = sys.argv[1:4]
stimuli = StimulusSet({"stimulus_id": ["colour", "grey"]})
stimuli.stimulus_paths = {s: os.path.join(folder, s + ".png") for s in ["colour", "grey"]}
stimuli.identifier = "neurocnnf-probe"
facts = {}


def difference(model, region, bins):
    model.start_recording(region, bins)
    values = model.look_at(stimuli).transpose("presentation", "neuroid").values
    return float(np.linalg.norm(values[0] - values[1]) / np.linalg.norm(values[0]))


grey = brainscore_vision.load_model(grey_id)
facts["grey_model_colour_vs_luma"] = difference(grey, "V1", [(50, 100)])
colour = brainscore_vision.load_model(colour_id)
facts["colour_model_colour_vs_luma"] = difference(colour, "V1", [(50, 100)])
facts["variables"] = {k: os.environ.get(k) for k in
                      ("RESULTCACHING_HOME", "BRAINIO_HOME", "BRAINSCORE_HOME", "MT_HOME")}
model_module = __import__(f"brainscore_vision.models.{grey_id}.model", fromlist=["x"])
for mode in ("overlap", "nearest"):
    brain_model = model_module.get_brain_model(grey_id, time_mode=mode)
    brain_model.start_recording("IT", [(70, 170)])
    answer = brain_model.look_at(stimuli).transpose("presentation", "neuroid").values
    first = brain_model.activations_model(stimuli, layers=["conv2-t0"])
    first = first.transpose("presentation", "neuroid").values
    facts[mode] = [brain_model.time_mode, bool(np.allclose(answer, first, atol=1e-6))]
facts["colour_default_mode"] = colour.time_mode
print(json.dumps(facts))
'''


@pytest.fixture(scope="module")
def probe(library, colour_plugin):
    """Facts from a fresh interpreter without neurocnnf and with none of Brain-Score's cache
    variables set: both plugins loaded, an image and its luma as grey shown to each."""
    root, plugin = library
    folder = root / "probe"
    folder.mkdir()
    pixels = np.random.default_rng(5).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    luma = np.rint(pixels @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    Image.fromarray(pixels).save(folder / "colour.png")
    Image.fromarray(np.repeat(luma[..., None], 3, axis=-1)).save(folder / "grey.png")
    (folder / "probe.py").write_text(PROBE)
    done = _run(root, str(folder / "probe.py"), plugin.name, colour_plugin.name, str(folder),
                cwd=root.parent, HOME=str(root / "home"), RESULTCACHING_HOME=None,
                BRAINIO_HOME=None, BRAINSCORE_HOME=None, MT_HOME=None)
    return _last_json(done)


@pytest.mark.slow
def test_loading_a_plugin_sets_none_of_brainscores_cache_variables(probe, library):
    root, _ = library
    assert probe["variables"] == dict.fromkeys(
        ("RESULTCACHING_HOME", "BRAINIO_HOME", "BRAINSCORE_HOME", "MT_HOME"))
    assert not (root / "home" / ".cache" / "neurocnnf" / "brainscore").exists()


@pytest.mark.slow
def test_the_plugins_get_brain_model_takes_the_time_mode(probe):
    # 70-170 ms: nearest answers with iteration 0 alone, overlap mixes in the feedback
    assert probe["nearest"] == ["nearest", True]
    assert probe["overlap"] == ["overlap", False]
    assert probe["colour_default_mode"] == "nearest"  # the mode chosen at export


@pytest.mark.slow
def test_the_natural_image_plugin_sees_colour_and_the_grey_one_luma(probe):
    assert probe["grey_model_colour_vs_luma"] < 0.01  # the same image to a grey model
    assert probe["colour_model_colour_vs_luma"] > 0.05


@pytest.mark.slow
def test_brainscore_score_runs_the_plugin_with_memory_preallocation_on(plugin_score,
                                                                       checkpoint):
    stdout, score = plugin_score
    preflight = _preflight(stdout)
    trace = load_model(checkpoint)(torch.zeros(1, 1, 28, 28), layers=None)
    it_features = trace.forward["conv2"][-1][0].numel()  # IT is committed to conv2
    assert preflight["formula_type"] == "pls" and preflight["num_stimuli"] == 64
    assert preflight["num_features"] == it_features
    assert score["raw"] > 0.5  # the data are a linear map of these responses
    assert score["score"] == pytest.approx(score["raw"] ** 2 / score["ceiling"])


@pytest.mark.slow
def test_the_score_command_goes_through_brainscores_scoring_and_agrees(library, checkpoint,
                                                                      plugin_score):
    root, _ = library
    done = _run(root, "-m", "neurocnnf.cli", "brainscore", "score", str(checkpoint), BENCHMARK,
                hide=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _preflight(done.stdout)["num_stimuli"] == 64
    printed = re.search(rf"^{re.escape(BENCHMARK)}: score ([\d.]+), raw ([\d.]+), ceiling "
                        r"([\d.]+)$", done.stdout, re.MULTILINE)
    assert printed, done.stdout[-2000:]
    _, score = plugin_score
    assert [float(v) for v in printed.groups()] == pytest.approx(
        [score["score"], score["raw"], score["ceiling"]], abs=1e-4)


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


def test_registration_is_a_quoted_literal(library):
    _, plugin = library
    init = (plugin / "__init__.py").read_text()
    assert re.findall(r"model_registry\['(\w+)'\]", init) == [plugin.name]


def test_metadata_passes_brainscores_validator_and_sets_no_reviewers_field(library):
    from brainscore_core.metadata import load, protected_changes, vocabulary_warnings
    from brainscore_core.plugin_management.handle_metadata import validate_metadata_file

    _, plugin = library
    assert (plugin / "metadata.yml").exists() and not (plugin / "metadata.yaml").exists()
    document = load((plugin / "metadata.yml").read_text(), "vision")
    assert validate_metadata_file(plugin / "metadata.yml")[0] == []  # what Brain-Score's CI runs
    assert vocabulary_warnings(document) == []
    entry = document["models"][plugin.name]
    assert entry["model"]["recurrent"] is True
    assert entry["model"]["input_resolution"] == {"channels": 1, "height": 28, "width": 28}
    # computed counts (legacy), the visual degrees and "verified" are not the submitter's
    assert protected_changes({}, entry) == []
    assert "legacy" not in entry


def test_only_a_plugin_without_metadata_is_auto_mergeable(checkpoint, tmp_path):
    from brainscore_core.plugin_management.parse_plugin_changes import parse_plugin_changes

    def automergeable(plugin):
        files = [f"brainscore_vision/models/{plugin.name}/{f.relative_to(plugin)}"
                 for f in plugin.rglob("*") if f.is_file()]
        return parse_plugin_changes(" ".join(files), "brainscore_vision")["is_automergeable"]

    assert not automergeable(export_plugin(checkpoint, tmp_path / "with"))
    assert automergeable(export_plugin(checkpoint, tmp_path / "without", metadata=False))


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
    url = "https://example.org/w.safetensors"
    export_plugin(checkpoint, plugins, weights_url=url, verify_weights=False)
    text = " ".join(str(b.content) for b in brainscore_blocks(layout) if b.kind == "text")
    assert f"`{local.name}`: not verified: the weights URL {url}" in text
    assert "local only" not in text  # the new export replaced the local one


# A BrainModel that is not ours: a small torch CNN, Brain-Score's PytorchWrapper + ModelCommitment
TORCH_MODEL = '''import numpy as np
import torch
from PIL import Image
from torch import nn
from brainscore_vision import model_registry
from brainscore_vision.model_helpers.activations.pytorch import PytorchWrapper
from brainscore_vision.model_helpers.brain_transformation import ModelCommitment


def preprocess(paths):  # no torchvision here: PIL, 64 x 64 RGB in [0, 1]
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((64, 64)), np.float32)
                     .transpose(2, 0, 1) / 255 for p in paths])


def small_torch_cnn():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(256, 10))
    wrapper = PytorchWrapper(identifier="small_torch_cnn", model=net.eval(),
                             preprocessing=preprocess)
    wrapper.image_size = 64
    return ModelCommitment(identifier="small_torch_cnn", activations_model=wrapper,
                           layers=["0", "2"],
                           region_layer_map={"V1": "0", "V2": "0", "V4": "2", "IT": "2"})


model_registry['small_torch_cnn'] = small_torch_cnn
'''
RDM_RUNS = [("cnnf", "Algonauts2019.92-IT-rdm"), ("cnnf", "Algonauts2019.78-EVC-rdm"),
            ("small_torch_cnn", "Algonauts2019.92-EVC-rdm"),
            ("small_torch_cnn", "Algonauts2019.78-IT-rdm")]
RDM_SCORES = '''import json, sys
import numpy as np
import brainscore_vision
from brainscore_vision.benchmark_helpers.neural_common import timebins_from_assembly
from brainscore_vision.benchmark_helpers.screen import place_on_screen

plugin, folder = sys.argv[1:3]
results = {}
for model_id, benchmark_id in json.loads(sys.argv[3]):
    model_id = plugin if model_id == "cnnf" else model_id
    score = brainscore_vision.score(model_id, benchmark_id)
    # the same look as the benchmark's, kept for the package's own RSA
    model = brainscore_vision.load_model(model_id)
    benchmark = brainscore_vision.load_benchmark(benchmark_id)
    model.start_recording(benchmark.region, timebins_from_assembly(benchmark._assembly))
    stimuli = place_on_screen(benchmark._assembly.stimulus_set, model.visual_degrees(),
                              benchmark._visual_degrees)
    seen = model.look_at(stimuli)
    if "time_bin" in seen.dims:
        seen = seen.squeeze("time_bin")
    seen = seen.transpose("presentation", "neuroid")
    order = [list(seen["stimulus_id"].values).index(s) for s in stimuli["stimulus_id"]]
    name = f"{folder}/{model_id}-{benchmark_id}.npy"
    np.save(name, seen.values[order])
    results[benchmark_id] = {"score": float(score), "raw": float(score.raw),
                             "ceiling": float(score.ceiling),
                             "lower_bound_loo": score.ceiling.attrs["lower_bound_loo"],
                             "subject_scores": list(score.raw.attrs["subject_scores"]),
                             "region": benchmark.region, "activations": name}
print(json.dumps(results))
'''


@pytest.fixture(scope="module")
def rdm_plugins(library):
    """The benchmark plugin and a small torch BrainModel's plugin in the copy of Brain-Score."""
    root, _ = library
    folder = export_benchmarks(root / "brainscore_vision" / "benchmarks")
    model = root / "brainscore_vision" / "models" / "small_torch_cnn"
    model.mkdir()
    (model / "__init__.py").write_text(TORCH_MODEL)
    return folder


@pytest.fixture(scope="module")
def rdm_scores(library, rdm_plugins, tmp_path_factory):
    """``brainscore_vision.score`` of each of RDM_RUNS in a fresh interpreter without
    neurocnnf, on the real data (found in the data roots, nothing downloaded)."""
    root, plugin = library
    images = roots.find(["algonauts2019/92images/images"])
    if images is None:
        pytest.skip("the Algonauts 2019 data are not in the data roots")
    folder = tmp_path_factory.mktemp("activations")
    (folder / "scores.py").write_text(RDM_SCORES)
    done = _run(root, str(folder / "scores.py"), plugin.name, str(folder),
                json.dumps(RDM_RUNS), cwd=root.parent, NEUROCNNF_DATA=str(images.parents[2]),
                NEUROCNNF_OFFLINE="1", BRAINSCORE_HOME=str(root / "brainscore_home"))
    return done.stdout, _last_json(done)


def test_the_benchmark_plugin_registers_literally_with_metadata_brainscore_accepts(
        library, rdm_plugins):
    from brainscore_core.plugin_management.handle_metadata import validate_metadata_file
    from brainscore_core.plugin_management.parse_plugin_changes import get_plugin_ids
    from packaging.requirements import Requirement

    root, _ = library
    ids = get_plugin_ids("benchmarks", [NAME], str(root / "brainscore_vision"))
    assert ids == list(BENCHMARKS) and len(ids) == 4
    errors, metadata = validate_metadata_file(rdm_plugins / "metadata.yml")
    assert errors == [] and set(metadata["benchmarks"]) == set(BENCHMARKS)
    names = {Requirement(line).name.lower()
             for line in (rdm_plugins / "requirements.txt").read_text().splitlines()}
    assert names <= ALLOWED | {"scipy"}
    assert not any("neurocnnf" in line for line in (rdm_plugins / "benchmark.py").read_text()
                   .splitlines() if "import" in line)


@pytest.mark.slow
def test_brainscore_scores_the_rdm_benchmarks_on_our_plugin_and_on_a_plain_torch_model(
        rdm_scores):
    stdout, results = rdm_scores
    assert set(results) == {benchmark for _, benchmark in RDM_RUNS}
    assert stdout.count('"formula_type": "rdm"') == len(RDM_RUNS)  # memory pre-allocation ran
    for benchmark, result in results.items():
        assert result["region"] == ("V1" if "EVC" in benchmark else "IT")
        assert len(result["subject_scores"]) == 15
        assert result["score"] == pytest.approx(result["raw"] / result["ceiling"], rel=1e-12)


@pytest.mark.slow
def test_the_rdm_benchmarks_equal_the_packages_own_rsa_on_the_same_activations(rdm_scores):
    _, results = rdm_scores
    for benchmark, result in results.items():
        dataset, region, _ = BENCHMARKS[benchmark]
        brain = load_brain_rdms(dataset, region).rdms
        model_rdm = rdm(np.load(result["activations"]))
        per_subject = [compare(model_rdm, subject) for subject in brain]
        np.testing.assert_allclose(result["subject_scores"], per_subject, atol=1e-10)
        assert result["raw"] == pytest.approx(evaluate(model_rdm, brain), abs=1e-10)
        # the ceiling: each subject against the mean RDM of all, and of the others (LOO)
        upper = np.mean([compare(s, brain.mean(0)) for s in brain])
        loo = np.mean([compare(s, np.delete(brain, i, 0).mean(0)) for i, s in enumerate(brain)])
        assert result["ceiling"] == pytest.approx(upper, abs=1e-10)
        assert result["lower_bound_loo"] == pytest.approx(loo, abs=1e-10)


@pytest.mark.slow
def test_the_benchmark_plugins_own_tests_pass(library, rdm_plugins):
    root, _ = library
    images = roots.find(["algonauts2019/92images/images"])
    if images is None:
        pytest.skip("the Algonauts 2019 data are not in the data roots")
    done = _run(root, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                str(rdm_plugins / "test.py"), NEUROCNNF_DATA=str(images.parents[2]),
                NEUROCNNF_OFFLINE="1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b4 passed", done.stdout), done.stdout[-1000:]
