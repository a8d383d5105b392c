"""The predictive-coding comparator and the feedback ablations shared with CNN-F."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from neurocnnf.activations import extract_dataset
from neurocnnf.analysis import predictive_coding as pc_analysis
from neurocnnf.models import PredictiveCodingNet, Trace, build_model, fmnist_small
from neurocnnf.models.engine import derangement
from neurocnnf.nn.functional import rms_normalize
from neurocnnf.stimuli import StimulusSet
from neurocnnf.stimuli.sets import _base_metadata
from neurocnnf.train import ConfigError, load_model, save_model


@pytest.fixture(scope="module")
def pc():
    torch.manual_seed(0)
    return PredictiveCodingNet(iterations=3).eval()


def _images(n=6, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _block(model, x, conv, bias):
    return F.max_pool2d(F.relu(rms_normalize(conv(x)) + bias.view(1, -1, 1, 1)), 2)


def test_iteration_zero_is_the_plain_cnn(pc):
    x = _images()
    e0 = (x - 0.5) / 0.5
    e2 = _block(pc, _block(pc, e0, pc.conv1, pc.bias1), pc.conv2, pc.bias2)
    with torch.no_grad():
        trace = pc(x, iterations=0)
        torch.testing.assert_close(trace.first, pc.fc(e2.flatten(1)))
    assert trace.iterations == 0 and trace.reconstruction == []


def test_one_iteration_follows_the_predify_update(pc):
    """e_l(1) = beta FF + lam D(e_{l+1}) + (1-beta-lam) e_l - alpha grad E, by autograd."""
    x = _images()
    with torch.no_grad():
        trace = pc(x, iterations=1, layers=None)
    e0 = (x - 0.5) / 0.5
    e1 = _block(pc, e0, pc.conv1, pc.bias1).detach().requires_grad_(True)
    e2 = _block(pc, e1, pc.conv2, pc.bias2).detach().requires_grad_(True)
    energy0 = 0.5 * (e0 - pc.decoder1(e1)).pow(2).sum()
    energy1 = 0.5 * (e1.detach() - pc.decoder2(e2)).pow(2).sum()
    grad1 = torch.autograd.grad(energy0, e1)[0]
    grad2 = torch.autograd.grad(energy1, e2)[0]
    b, lam, a = pc.beta, pc.lam, pc.alpha
    with torch.no_grad():
        new_e1 = b * e1 + lam * pc.decoder2(e2) + (1 - b - lam) * e1 - a * grad1
        new_e2 = b * _block(pc, new_e1, pc.conv2, pc.bias2) + (1 - b) * e2 - a * grad2
        torch.testing.assert_close(trace.forward["conv1"][1], new_e1, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(trace.forward["conv2"][1], new_e2, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(trace.logits[1], pc.fc(new_e2.flatten(1)), atol=1e-5,
                                   rtol=1e-5)
        torch.testing.assert_close(trace.feedback["conv1"][0], pc.decoder2(e2))
        torch.testing.assert_close(trace.reconstruction[0], pc.decoder2(e2))
    assert trace.h_hat[1] is trace.forward["conv1"][1]


def test_pure_feedforward_settings_keep_every_iteration_at_t0():
    torch.manual_seed(1)
    model = PredictiveCodingNet(iterations=4, beta=1.0, lam=0.0, alpha=0.0).eval()
    with torch.no_grad():
        trace = model(_images())
    for logits in trace.logits[1:]:
        torch.testing.assert_close(logits, trace.first)


def test_gradient_reaches_every_parameter_and_tied_nothing(pc):
    model = PredictiveCodingNet(iterations=2)
    trace = model(_images(), layers=model.reconstruction_taps)
    loss = sum(z.pow(2).mean() for z in trace.logits) + sum(
        (g - trace.forward["input"][0]).pow(2).mean() for g in trace.feedback["input"]) + sum(
        (g - trace.h).pow(2).mean() for g in trace.reconstruction)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert model.decoder2.weight.data_ptr() != model.conv2.weight.data_ptr()


def test_clear_errors(pc):
    with pytest.raises(ValueError, match="eta is a CNN-F setting"):
        pc(_images(), eta=0.5)
    with pytest.raises(ValueError, match="unknown layer"):
        pc(_images(), layers=["conv9"])
    with pytest.raises(ValueError, match="beta"):
        PredictiveCodingNet(beta=0.9, lam=0.3)
    with pytest.raises(ValueError, match="expects images"):
        pc(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="unknown feedback mode"):
        pc(_images(), feedback="off")


def test_checkpoint_round_trip_and_registry(tmp_path, pc):
    assert isinstance(build_model("fmnist_pc", iterations=2), PredictiveCodingNet)
    save_model(pc, tmp_path / "pc.safetensors")
    loaded = load_model(tmp_path / "pc.safetensors")
    x = _images()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).last, pc(x).last)
    assert loaded.config == pc.config and loaded.iterations == 3


@pytest.mark.parametrize("n", [1, 2, 3, 10, 257])
def test_derangement_moves_every_index(n):
    perm = derangement(n)
    assert sorted(perm.tolist()) == list(range(n))
    if n > 1:
        assert (perm != torch.arange(n)).all()


@pytest.mark.parametrize("make", [lambda: fmnist_small(iterations=2),
                                  lambda: PredictiveCodingNet(iterations=2)])
def test_ablations(make):
    torch.manual_seed(0)
    model = make().eval()
    same = _images(1).expand(5, -1, -1, -1).contiguous()
    varied = _images(5)
    with torch.no_grad():
        # shuffling identical images' feedback changes nothing; different images' does
        torch.testing.assert_close(model(same, feedback="shuffle").last, model(same).last)
        assert not torch.allclose(model(varied, feedback="shuffle").last, model(varied).last)
        zero = model(varied, feedback="zero")
        assert not torch.allclose(zero.last, model(varied).last)
        torch.testing.assert_close(zero.first, model(varied).first)  # t = 0 has no feedback


def test_extractor_treats_the_pc_model_like_cnnf(pc, tmp_path):
    n = 8
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)
    stimuli = StimulusSet("toy", _base_metadata([f"s{i}" for i in range(n)],
                                                {"label": np.arange(n)}), images=images)
    ds = extract_dataset(pc, stimuli, tmp_path / "pc.nc", batch_size=n, progress=False)
    assert {"input", "conv1", "conv2", "conv1_feedback", "logits"} <= set(ds.data_vars)
    assert ds["conv1"].sizes["iteration"] == 4
    assert np.isnan(ds["conv1_feedback"].values[:, 0]).all()
    assert np.isfinite(ds["conv1_feedback"].values[:, 1:]).all()
    assert "conv2_feedback" not in ds  # the top layer receives no prediction
    assert np.isnan(ds["mask_flip_fraction"].values).all()  # no latent masks to flip


def _trace(states, predictions, logits=None):
    logits = logits or [torch.zeros(len(states[0]), 3) for _ in states]
    return Trace(logits, states[0], states, predictions)


def test_prediction_error_and_change_recover_planted_values():
    base = torch.randn(4, 2, 3, 3)
    states = [base * (1 + 0.1 * t) for t in range(4)]
    predictions = [states[t] + 0.5 * (t + 1) for t in range(3)]  # offset 0.5 (t + 1)
    trace = _trace(states, predictions)
    errors = pc_analysis.prediction_errors(trace)[pc_analysis.LAYER_K]
    torch.testing.assert_close(errors, torch.tensor([[0.5, 1.0, 1.5]]).expand(4, 3))
    change = pc_analysis.representational_change(trace)[pc_analysis.LAYER_K]
    torch.testing.assert_close(change, torch.tensor([[0.0, 0.1, 0.1, 0.1]]).expand(4, 4))


def test_correlation_distance_known_values():
    a = torch.randn(3, 5000, generator=torch.Generator().manual_seed(0))
    b = torch.randn(3, 5000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(pc_analysis.correlation_distance(a, 3 * a + 1), torch.zeros(3),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(pc_analysis.correlation_distance(a, -a), 2 * torch.ones(3))
    assert (pc_analysis.correlation_distance(a, b) - 1).abs().max() < 0.05


def test_compare_recovers_a_model_without_recurrence():
    torch.manual_seed(0)
    still = PredictiveCodingNet(iterations=3, beta=1.0, lam=0.0, alpha=0.0).eval()
    twin = PredictiveCodingNet(iterations=0).eval()
    clean, labels = _images(12), torch.arange(12) % 10
    noisy = (clean + 0.3 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
             ).clamp(0, 1)
    tables = pc_analysis.compare({"still": still, "copy": copy.deepcopy(still), "cnn": twin},
                                 {0.0: clean, 0.3: noisy}, labels, iterations=3, batch_size=5,
                                 progress=False)
    acc = tables["accuracy"]
    for (model, mode, _), rows in acc.groupby(["model", "feedback", "noise"]):
        if model == "cnn":
            assert mode == "intact" and list(rows["iteration"]) == [0]
        else:  # no dynamics: every iteration gives the t = 0 answer, in every mode
            assert rows["value"].nunique() == 1
    change = tables["change"]
    assert change[change["model"] == "still"]["value"].abs().max() < 1e-6
    distance = tables["noise_distance"]
    assert distance[distance["noise"] == 0]["value"].abs().max() < 1e-5
    assert (distance[distance["noise"] == 0.3]["value"] > 0.01).all()
    errors = tables["prediction_error"]
    np.testing.assert_allclose(errors[errors["iteration"] == 0]["relative"], 1.0)
    # the same weights see the same noisy images: identical tables
    for name, table in tables.items():
        a = table[table["model"] == "still"].drop(columns="model").reset_index(drop=True)
        b = table[table["model"] == "copy"].drop(columns="model").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, obj=name)
    assert set(pc_analysis.summary(tables)) == {"still", "copy", "cnn"}


def test_trains_with_the_training_loop_and_attacks_reach_it(tmp_path):
    from test_train import tiny_config

    from neurocnnf.attacks import logits_fn, pgd
    from neurocnnf.train import train

    config = tiny_config(model={"arch": "fmnist_pc", "iterations": 2, "eta": None,
                                "options": {"beta": 0.8, "lam": 0.1, "alpha": 0.01}},
                         optim={"epochs": 1})
    result = train(config, tmp_path, progress=False)
    bad = tiny_config(model={"arch": "fmnist_pc", "eta": None, "options": {"beta": 2.0}})
    with pytest.raises(ConfigError, match="model settings: need 0 < beta"):
        train(bad, tmp_path / "bad", progress=False)
    assert result["test"]["acc_last"] > 0.2  # well above chance after one tiny epoch
    model = load_model(tmp_path).eval()
    x, y = _images(4), torch.arange(4)
    adversarial = pgd(logits_fn(model, "e2e", "last"), x, y, eps=0.1, steps=2, step_size=0.05)
    assert 0 < (adversarial - x).abs().max() <= 0.1 + 1e-6


def test_correlation_distance_equals_the_rsa_pearson_with_constant_rows():
    from neurocnnf.analysis.rsa import unit_rows

    a = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    b = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    a[1] = 2.5  # a constant sample: r = 0, distance 1
    expected = 1 - (unit_rows(a.flatten(1).double().numpy())
                    * unit_rows(b.flatten(1).double().numpy())).sum(1)
    distance = pc_analysis.correlation_distance(a, b)
    assert distance.dtype == torch.float32 and distance[1] == 1.0
    torch.testing.assert_close(distance, torch.from_numpy(expected).float(), rtol=0, atol=1e-7)


def _stack_block(model, x, layer):
    conv, bias = getattr(model, f"conv{layer}"), getattr(model, f"bias{layer}")
    out = F.relu(rms_normalize(conv(x)) + bias.view(1, -1, 1, 1))
    return F.max_pool2d(out, 2) if model.pools[layer - 1] else out


def test_a_deeper_stack_follows_the_predify_update_at_every_layer():
    """Three blocks, the first without pooling, colour input with its own mean/std: the
    middle layer mixes its drive, the prediction from above, its memory and the error step."""
    torch.manual_seed(1)
    pc = PredictiveCodingNet(3, 8, (4, 6, 8), 3, iterations=1, pool_after=(False, True, True),
                             mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4), arch="probe").eval()
    x = torch.rand(5, 3, 8, 8)
    with torch.no_grad():
        trace = pc(x, iterations=1, layers=None)
    e = [(x - pc.mean) / pc.std]
    for layer in (1, 2, 3):
        e.append(_stack_block(pc, e[-1], layer).detach().requires_grad_(True))
    grads = [torch.autograd.grad(
        0.5 * (e[i - 1].detach() - getattr(pc, f"decoder{i}")(e[i])).pow(2).sum(), e[i])[0]
        for i in (1, 2, 3)]
    b, lam, a = pc.beta, pc.lam, pc.alpha
    with torch.no_grad():
        torch.testing.assert_close(trace.logits[0], pc.fc(e[3].flatten(1)))
        new1 = b * e[1] + lam * pc.decoder2(e[2]) + (1 - b - lam) * e[1] - a * grads[0]
        new2 = (b * _stack_block(pc, new1, 2) + lam * pc.decoder3(e[3])
                + (1 - b - lam) * e[2] - a * grads[1])
        new3 = b * _stack_block(pc, new2, 3) + (1 - b) * e[3] - a * grads[2]
        for name, value in (("conv1", new1), ("conv2", new2), ("conv3", new3)):
            torch.testing.assert_close(trace.forward[name][1], value, atol=1e-5, rtol=1e-5)
    assert pc.feedback_taps == ("input", "conv1", "conv2")
    assert [trace.feedback[n][0].shape[1:] for n in pc.feedback_taps] == [
        (3, 8, 8), (4, 8, 8), (6, 4, 4)]


def test_vgg6_pc_round_trips_with_its_normalisation(tmp_path):
    model = build_model("vgg6_pc", iterations=2, width=8, mean=[0.49, 0.48, 0.45],
                        std=[0.25, 0.24, 0.26]).eval()
    save_model(model, tmp_path / "pc.safetensors")
    again = load_model(tmp_path / "pc.safetensors")
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(x).last, model(x).last)
    assert again.config == model.config and again.config["arch"] == "vgg6_pc"
    assert again.taps == ("input", *(f"conv{i}" for i in range(1, 7)))


def test_the_blocks_pool_as_max_pool2d_does_bit_for_bit():
    """The blocks pool with CNN-F's pooling: max_pool2d's values, and its gradient to each
    window's first maximum (ReLU's zeros make ties)."""
    torch.manual_seed(1)
    model = PredictiveCodingNet(iterations=1)
    x = torch.randn(4, 1, 28, 28)
    results = []
    for block in (model._block, lambda e, layer: _block(model, e, model.conv1, model.bias1)):
        model.zero_grad()
        out = block(x, 1)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), model.conv1.weight.grad.clone(), model.bias1.grad.clone()))
    assert (results[0][0] == 0).any()  # ties present
    for ours, reference in zip(*results, strict=True):
        assert torch.equal(ours, reference)


def test_the_update_equals_subtracting_alpha_times_the_gradient_bit_for_bit(pc):
    """The update adds alpha times D^T(below - D(e)); written as Predify states it, minus alpha
    times the gradient -D^T(below - D(e)), it gives the same bits."""
    x = _images()
    with torch.no_grad():
        trace = pc(x, iterations=1, layers=None)
        e0, e1, e2 = (trace.forward[name][0] for name in ("input", "conv1", "conv2"))
        b, lam, a = pc.beta, pc.lam, pc.alpha

        def gradient(below, decoder, e):
            return -F.conv2d(below - decoder(e), decoder.weight, stride=decoder.stride,
                             padding=decoder.padding)

        new_e1 = b * e1 + (lam * pc.decoder2(e2) + (1 - b - lam) * e1) \
            - a * gradient(e0, pc.decoder1, e1)
        new_e2 = b * _block(pc, new_e1, pc.conv2, pc.bias2) + (1 - b) * e2 \
            - a * gradient(e1, pc.decoder2, e2)
    assert torch.equal(trace.forward["conv1"][1], new_e1)
    assert torch.equal(trace.forward["conv2"][1], new_e2)
