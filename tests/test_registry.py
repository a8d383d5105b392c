"""The model interface (FeedbackModel) and the architecture registry.

The toy architecture below is registered here, in the test file only: building it by name,
configuring and training it, saving and loading its checkpoints and committing it to Brain-Score
regions must need no other file.
"""

import argparse
import json
from collections import OrderedDict
from functools import partial
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from neurocnnf.brainscore.regions import default_region_layer_map
from neurocnnf.models import (
    FeedbackModel,
    PredictiveCodingNet,
    architecture,
    architecture_names,
    build_from_config,
    build_model,
    feedback_convnet,
    fmnist_small,
    from_backbone,
    register_architecture,
    registry,
)
from neurocnnf.models.commitments import committed_regions, regions_from_rsa
from neurocnnf.train import (
    CheckpointError,
    ConfigError,
    config_from_dict,
    load_checkpoint,
    save_model,
    train,
)

TOY = "toy_net"
TOY_REGIONS = {"V1": "conv1", "V2": "conv1", "V4": "conv2", "IT": "conv2"}


def cornet_like() -> nn.Sequential:
    torch.manual_seed(0)

    def block(c_in, c_out, pool=True):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
                             nn.MaxPool2d(2) if pool else nn.Identity())
    return nn.Sequential(OrderedDict(
        V1=block(1, 4), V2=block(4, 8), IT=block(8, 8, pool=False),
        decoder=nn.Sequential(nn.Flatten(), nn.Linear(8 * 7 * 7, 10))))


ENGINES = {
    "cnnf": lambda: fmnist_small(iterations=2),
    "predictive_coding": lambda: PredictiveCodingNet(iterations=3),
    "from_backbone": lambda: from_backbone(cornet_like(), "V1", (1, 28, 28), iterations=2),
}


@pytest.fixture
def toy(monkeypatch):
    """A small conv net registered under TOY for one test (the registry is restored after)."""
    monkeypatch.setattr(registry, "_ARCHITECTURES", dict(registry._ARCHITECTURES))
    return register_architecture(
        TOY, partial(feedback_convnet, TOY, conv_channels=(4, 8), kernel_size=3),
        regions=TOY_REGIONS, fixed_layout=("num_classes",),
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_implements_the_protocol(engine):
    torch.manual_seed(0)
    model = ENGINES[engine]().eval()
    assert isinstance(model, FeedbackModel) and not isinstance(nn.Linear(2, 2), FeedbackModel)
    assert model.taps == model.encoder_taps + model.body_taps and model.body_taps
    assert set(model.reconstruction_taps) <= set(model.feedback_taps) <= set(model.taps)
    assert model.config["arch"] in architecture_names()
    x = torch.rand(4, *model.input_shape)
    with torch.no_grad():
        trace = model(x, layers=None)  # no iterations given: the model's default
        assert len(trace.logits) == model.iterations + 1 >= 2
        assert trace.logits[0].shape == (4, model.num_classes)
        assert len(model(x, iterations=0).logits) == 1
    for name in model.encoder_taps:  # computed once
        assert all(torch.equal(f, trace.forward[name][0]) for f in trace.forward[name])
    assert any(not torch.equal(trace.forward[name][-1], trace.forward[name][0])
               for name in model.body_taps)  # the body changes across iterations
    for name in model.feedback_taps:
        assert len(trace.feedback[name]) == model.iterations
    # the default eta is the one the call uses, and an engine without one refuses a value
    if model.eta is None:
        with pytest.raises(ValueError, match="eta"):
            model(x, eta=0.5)
    else:
        with torch.no_grad():
            torch.testing.assert_close(model(x, eta=model.eta).last, trace.last)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_rebuilds_from_its_config(engine):
    model = ENGINES[engine]()
    rebuilt = build_from_config(model.config, iterations=4, eta=model.eta)
    assert type(rebuilt) is type(model) and rebuilt.config == model.config
    assert rebuilt.iterations == 4 and rebuilt.eta == model.eta and rebuilt.taps == model.taps
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}


def test_the_registered_architectures():
    assert set(architecture_names()) == {"fmnist_small", "fmnist_adv", "wrn", "fmnist_pc",
                                         "vgg6", "vgg6_pc", "backbone"}
    assert "backbone" not in architecture_names(buildable=True)  # made by from_backbone
    assert not architecture("fmnist_pc").has_eta and architecture("wrn").has_eta
    for name in architecture_names(buildable=True):
        with torch.device("meta"):
            model = build_model(name)
        assert model.config["arch"] == name
        regions = default_region_layer_map(name, model.taps)
        assert set(regions) == {"V1", "V2", "V4", "IT"} and set(regions.values()) <= set(
            model.taps)
    backbone = ENGINES["from_backbone"]()
    assert default_region_layer_map("backbone", backbone.taps) == {"V1": "V1", "V2": "V2",
                                                                   "IT": "IT"}


def test_the_natural_image_commitment_is_the_one_chosen_on_fmri(tmp_path):
    """vgg6 (and vgg6_pc, on the same backbone) commit what docs/neural/commitment.json chose
    for the CNN-F on algonauts92: V1 and V2 its EVC layer, IT its IT layer; the package file
    is what analyses/neural.py writes from it now (rerun it after a new analysis)."""
    from helpers import analysis_script

    from neurocnnf.models.commitments import COMMITMENTS

    docs = Path(__file__).resolve().parents[1] / "docs" / "neural"
    chosen = json.loads((docs / "commitment.json").read_text())
    assert chosen["chosen_on"] == "algonauts92"
    evc, it = (chosen["regions"][r]["CNN-F"]["layer"] for r in ("EVC", "IT"))
    for arch in ("vgg6", "vgg6_pc"):
        regions = default_region_layer_map(arch)
        assert (regions["V1"], regions["V2"], regions["IT"]) == (evc, evc, it), arch
    taps = build_model("vgg6").taps
    assert taps.index(evc) <= taps.index(regions["V4"]) <= taps.index(it) or \
        taps.index(it) <= taps.index(regions["V4"]) <= taps.index(evc)
    script = analysis_script("neural")
    assert script.REGISTRY == COMMITMENTS
    rewritten = tmp_path / "commitments.json"
    script.registry(argparse.Namespace(docs=str(docs), out=str(rewritten)))
    shipped = json.loads(COMMITMENTS.read_text())
    assert json.loads(rewritten.read_text())["architectures"] == shipped["architectures"]
    assert shipped["architectures"]["vgg6"]["chosen"]["IT"] == chosen["regions"]["IT"]["CNN-F"]


def test_fmri_regions_become_brainscore_regions():
    taps = ("input", "conv1", "conv2", "conv3", "conv4", "conv5", "conv6")
    assert regions_from_rsa("conv2", "conv6", taps) == {"V1": "conv2", "V2": "conv2",
                                                        "V4": "conv4", "IT": "conv6"}
    assert regions_from_rsa("conv2", "conv5", taps)["V4"] == "conv4"  # the one nearer IT
    assert regions_from_rsa("conv5", "conv2", taps)["V4"] == "conv3"  # IT below EVC
    assert set(regions_from_rsa("conv5", "conv5", taps).values()) == {"conv5"}
    with pytest.raises(ValueError, match=r"\['conv9'\] are not taps"):
        regions_from_rsa("conv1", "conv9", taps)


def test_a_missing_commitment_is_a_clear_error(tmp_path):
    path = tmp_path / "commitments.json"
    path.write_text(json.dumps({"architectures": {"vgg6": {"regions": {"IT": "conv6"}}}}))
    assert committed_regions("vgg6", path) == {"IT": "conv6"}
    with pytest.raises(ValueError, match="commits no layers for architecture 'wrn'"):
        committed_regions("wrn", path)


def test_unknown_names_list_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown architecture 'resnet'.*fmnist_small"):
        build_model("resnet")
    with pytest.raises(ValueError, match=r"'backbone'.*choose from.*wrn"):
        build_model("backbone")
    with pytest.raises(ValueError, match=r"unknown architecture 'resnet'.*backbone"):
        build_from_config({"arch": "resnet"})
    with pytest.raises(ValueError, match="names no architecture"):
        build_from_config({"depth": 40})
    with pytest.raises(ConfigError, match=r"model.arch 'resnet' is not one of \[.*wrn"):
        config_from_dict({"model": {"arch": "resnet"}})
    with pytest.raises(ValueError, match="already registered"):
        register_architecture("wrn", build_model)
    with pytest.raises(ValueError, match="needs a build or a rebuild function"):
        register_architecture("nothing", None)
    assert "nothing" not in architecture_names()
    path = tmp_path / "m.safetensors"
    save_model(fmnist_small(), path)
    _edit_metadata(path, lambda meta: meta["model"].update(arch="resnet"))
    with pytest.raises(CheckpointError, match=r"cannot rebuild.*unknown architecture 'resnet'"):
        load_checkpoint(path)


def test_a_registered_architecture_works_everywhere_by_name(toy, tmp_path):
    assert TOY in architecture_names(buildable=True)
    model = build_model(TOY, iterations=2)
    assert isinstance(model, FeedbackModel) and model.config["arch"] == TOY
    assert model.taps == ("conv1", "conv2")
    # the training config accepts it
    config = config_from_dict({"model": {"arch": TOY, "iterations": 2}})
    assert config.model.arch == TOY
    # checkpoints rebuild it by name
    save_model(model, tmp_path / "toy.safetensors", epoch=1)
    loaded = load_checkpoint(tmp_path / "toy.safetensors")
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x).last, model.eval()(x).last, rtol=0, atol=0)
    assert loaded.model.config == model.config and loaded.metadata["model"]["arch"] == TOY
    # its fixed layout is enforced: an edited layout under its name is refused
    _edit_metadata(tmp_path / "toy.safetensors", lambda meta: meta["model"].update(
        conv_channels=[4, 9]))
    with pytest.raises(CheckpointError, match=rf"labelled '{TOY}' but its layout differs from "
                                              rf"{TOY} in \['conv_channels'\]"):
        load_checkpoint(tmp_path / "toy.safetensors")
    # Brain-Score commits its regions as registered
    assert default_region_layer_map(TOY, model.taps) == TOY_REGIONS


@pytest.mark.data
def test_a_registered_architecture_trains_through_the_train_path(toy, tmp_path):
    config = config_from_dict({
        "name": "toy", "seed": 0, "device": "cpu", "eval_batch_size": 64,
        "model": {"arch": TOY, "iterations": 1},
        "data": {"train_limit": 40, "test_limit": 32, "val_fraction": 0.1},
        "optim": {"optimizer": "adam", "lr": 0.003, "batch_size": 32, "epochs": 1},
    })
    train(config, tmp_path, progress=False)  # 36 training images: one step of 32
    loaded = load_checkpoint(tmp_path)
    assert loaded.model.config["arch"] == TOY and loaded.metadata["epoch"] == 1
    assert loaded.name == "toy"


def _edit_metadata(path, edit):
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["neurocnnf"])
    edit(meta)
    save_file(load_file(str(path)), str(path), metadata={"neurocnnf": json.dumps(meta)})
