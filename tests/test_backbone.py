"""from_backbone: ordinary PyTorch networks (VGG-style, CORnet-Z-style, residual) as CNN-F."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import neurocnnf
from neurocnnf.activations import extract_dataset
from neurocnnf.models import BackboneError, from_backbone
from neurocnnf.nn import TiedConv2d, TiedLinear
from neurocnnf.stimuli import StimulusSet
from neurocnnf.stimuli.sets import _base_metadata
from neurocnnf.train import save_model
from neurocnnf.train.config import LossConfig
from neurocnnf.train.losses import standard_loss


def cornet_z(bias: bool = False) -> nn.Sequential:
    """CORnet-Z's layout (V1, V2, V4, IT blocks of conv-ReLU-pool, then a decoder), small."""
    def block(c_in, c_out):
        return nn.Sequential(OrderedDict(
            conv=nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias), nonlin=nn.ReLU(inplace=True),
            pool=nn.MaxPool2d(2), output=nn.Identity()))
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(
        V1=block(1, 8), V2=block(8, 16), V4=block(16, 16), IT=block(16, 32),
        decoder=nn.Sequential(OrderedDict(avgpool=nn.AdaptiveAvgPool2d(1),
                                          flatten=nn.Flatten(), linear=nn.Linear(32, 10)))))


def vgg_style() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(OrderedDict(
        block1=nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        block2=nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        classifier=nn.Sequential(nn.Flatten(), nn.Linear(16 * 7 * 7, 32), nn.ReLU(),
                                 nn.Dropout(0.5), nn.Linear(32, 10)))).eval()


class Res(nn.Module):
    """A post-activation residual block with an optional 1x1 projection."""

    def __init__(self, channels, project=False):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.project = nn.Conv2d(channels, channels, 1, bias=False) if project else None

    def forward(self, x):
        skip = x if self.project is None else self.project(x)
        return self.relu(self.conv2(self.relu(self.conv1(x))) + skip)


def resnet_bn() -> nn.Sequential:
    torch.manual_seed(2)
    net = nn.Sequential(OrderedDict(
        stem=nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                           nn.ReLU()),
        res1=Res(8), res2=Res(8, project=True), pool=nn.MaxPool2d(2), flatten=nn.Flatten(),
        fc=nn.Linear(8 * 8 * 8, 5))).eval()
    net.stem[1].running_mean.uniform_(-1, 1)
    net.stem[1].running_var.uniform_(0.5, 2)
    return net


def test_cornet_z_at_t0_is_exactly_the_backbone_with_region_taps():
    backbone = cornet_z(bias=False)
    model = from_backbone(backbone, "V1", (1, 32, 32), iterations=2)
    assert model.taps == ("V1", "V2", "V4", "IT") and model.encoder_taps == ("V1",)
    x = torch.rand(6, 1, 32, 32)
    with torch.no_grad():
        # the same torch ops in the same order (bias-free convs): bit-identical where the
        # linear maps are torch's too (oneDNN off), to float rounding where they run on oneDNN
        with torch.backends.mkldnn.flags(enabled=False):
            assert torch.equal(model(x, iterations=0).last, backbone(x))
        torch.testing.assert_close(model(x, iterations=0).last, backbone(x), atol=1e-6, rtol=0)
        trace = model(x, layers=None)
    assert trace.iterations == 2 and trace.last.shape == (6, 10)
    assert not torch.equal(trace.last, trace.first)  # the feedback does something


def test_vgg_style_with_biases_matches_to_rounding():
    backbone = vgg_style()
    model = from_backbone(backbone, "block1", (1, 28, 28))
    assert model.taps == ("block1", "block2")  # the classifier ends in the logits: no tap
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        # nn.Conv2d adds its bias inside the convolution kernel, the CNN-F as a separate Bias
        # layer (the theory's split): same values up to float rounding (~1e-8 here)
        torch.testing.assert_close(model(x, iterations=0).last, backbone(x), atol=1e-6, rtol=0)


def test_feedback_weights_are_the_forward_parameters():
    backbone = vgg_style()
    model = from_backbone(backbone, "block1", (1, 28, 28))
    tied = [m for m in model.modules() if isinstance(m, TiedConv2d | TiedLinear)]
    forward = [m for m in backbone.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert [t.weight for t in tied] == [f.weight for f in forward]
    assert all(t.weight is f.weight for t, f in zip(tied, forward, strict=True))
    assert {id(p) for p in model.parameters()} == {id(p) for p in backbone.parameters()}
    # the generative pass alone (reconstruction of h) reaches the forward weights of the body
    trace = model(torch.rand(2, 1, 28, 28), iterations=1)
    trace.reconstruction[0].pow(2).sum().backward()
    assert backbone.block2[0].weight.grad.abs().sum() > 0
    assert backbone.classifier[4].weight.grad.abs().sum() > 0


def test_residual_net_with_folded_batchnorm():
    backbone = resnet_bn()
    model = from_backbone(backbone, "stem", (3, 16, 16), iterations=2)
    assert model.taps == ("stem", "res1", "res2")
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        # BatchNorm's eval statistics folded into the stem conv: equal to rounding
        torch.testing.assert_close(model(x, iterations=0).last, backbone(x), atol=1e-6,
                                   rtol=0)
        assert model(x).last.shape == (4, 5)
    with pytest.raises(BackboneError, match=r"'stem.1' \(BatchNorm2d\).*batchnorm='fold'"):
        from_backbone(backbone, "stem", (3, 16, 16), batchnorm="error")


def test_norm_option_inserts_the_rms_norm_and_bias():
    model = from_backbone(cornet_z(), "V1", (1, 32, 32), norm=True)
    names = [type(m).__name__ for m in model.body.layers]
    assert names[:4] == ["FeedbackNorm", "TiedConv2d", "RMSNorm", "Bias"]
    assert model(torch.rand(2, 1, 32, 32)).last.shape == (2, 10)


def test_trains_one_step_and_saves_and_loads(tmp_path):
    backbone = cornet_z(bias=True)
    model = from_backbone(backbone, "V1", (1, 32, 32), iterations=2)
    images, labels = torch.rand(8, 1, 32, 32), torch.arange(8) % 10
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = backbone.V2.conv.weight.detach().clone()
    terms = standard_loss(model(images, layers=model.reconstruction_taps), labels,
                          model.reconstruction_taps, LossConfig())
    assert terms.reconstruction > 0
    optimizer.zero_grad()
    terms.total.backward()
    optimizer.step()
    assert not torch.equal(before, backbone.V2.conv.weight)  # the backbone's own weights
    save_model(model, tmp_path / "model.safetensors")
    loaded = neurocnnf.load(tmp_path / "model.safetensors")
    assert loaded.taps == model.taps and loaded.iterations == 2
    with torch.no_grad():
        assert torch.equal(loaded(images).last, model.eval()(images).last)


def test_extracts_per_iteration_activations(tmp_path):
    model = from_backbone(cornet_z(), "V1", (1, 32, 32), iterations=2).eval()
    images = torch.randint(0, 256, (5, 1, 32, 32), dtype=torch.uint8)
    stimuli = StimulusSet("toy5", _base_metadata([f"s{i}" for i in range(5)]), images=images)
    ds = extract_dataset(model, stimuli, tmp_path / "acts.nc", layers=["V2", "IT", "logits"],
                         progress=False)
    assert ds["IT"].dims == ("presentation", "iteration", "neuroid_IT")
    assert ds["IT"].shape == (5, 3, 32 * 2 * 2)
    with torch.no_grad():
        trace = model(images.float() / 255, layers=["IT"])
    np.testing.assert_allclose(ds["IT"].values[:, 2], trace.forward["IT"][2].flatten(1),
                               atol=1e-6)


def test_is_a_brain_model_with_regions_from_block_names(tmp_path):
    pytest.importorskip("brainscore_vision")
    from neurocnnf.brainscore.caches import configure_environment

    configure_environment(tmp_path / "cache")
    from neurocnnf.brainscore.commitment import make_brain_model

    model = from_backbone(cornet_z(), "V1", (1, 32, 32), iterations=2).eval()
    brain_model = make_brain_model(model, "cornet-z-cnnf-test")
    assert brain_model.region_layer_map == {r: r for r in ("V1", "V2", "V4", "IT")}


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.attn = nn.MultiheadAttention(64, 1, batch_first=True)
        self.fc = nn.Linear(4 * 64, 10)

    def forward(self, x):
        tokens = self.conv(x).flatten(2)  # (N, 4 tokens, 64 features)
        return self.fc(self.attn(tokens, tokens, tokens)[0].flatten(1))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.cat([torch.relu(self.a(x)), self.b(x)], 1).flatten(1))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: not traceable
            x = -x
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _seq(*layers):
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), *layers, nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 10))


@pytest.mark.parametrize("backbone, message", [
    (_seq(nn.MaxPool2d(3, stride=2, padding=1)), r"layer '2' \(MaxPool2d\).*overlapping"),
    (Attention(), r"'attn' \(MultiheadAttention\).*attention"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.GELU(), nn.MaxPool2d(2), nn.Flatten(),
                   nn.Linear(64, 10)), r"'1' \(GELU\).*ReLU only"),
    (Concat(), r"'cat'.*concatenation"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, groups=1), nn.ReLU(),
                   nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.MaxPool2d(2), nn.Flatten(),
                   nn.Linear(64, 10)), r"'2' \(Conv2d\): groups=4"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4), nn.MaxPool2d(2),
                   nn.Flatten(), nn.Linear(64, 10)), r"'2' \(BatchNorm2d\).*directly after a conv"),
    (Branchy(), r"not torch.fx-traceable"),
])
def test_unsupported_layers_are_one_clear_error(backbone, message):
    with pytest.raises(BackboneError, match=message) as error:
        from_backbone(backbone, "0" if isinstance(backbone, nn.Sequential) else "conv",
                      (1, 8, 8))
    assert "\n" not in str(error.value)


def test_bad_split_points_are_clear_errors():
    with pytest.raises(BackboneError, match="not a module of the backbone"):
        from_backbone(cornet_z(), "V3", (1, 32, 32))
    with pytest.raises(BackboneError, match="main path"):
        from_backbone(resnet_bn(), "res1.conv1", (3, 16, 16))
