"""The iteration engine: Algorithm 1, the trace, determinism, re-entrancy, input errors."""

import pytest
import torch
import torch.nn.functional as F

from neurocnnf.models import build_model, fmnist_small
from neurocnnf.models.engine import unroll
from neurocnnf.nn import InferenceState

ARCHS = {
    "fmnist_small": ((1, 28, 28), 83_466),
    "fmnist_adv": ((1, 28, 28), 3_298_962),
    "wrn": ((3, 32, 32), 2_240_842),
}


def _plain_cnn_logits(model, x):
    """FMNIST-small as a plain CNN written with torch functions, reading the model's weights."""
    p = dict(model.named_parameters())
    h = (x - 0.5) / 0.5
    blocks = [("encoder.layers.1", "encoder.layers.3"), ("body.layers.0", "body.layers.2")]
    for conv, bias in blocks:
        h = F.conv2d(h, p[f"{conv}.weight"], padding=2)
        h = h / torch.sqrt(h.pow(2).mean(dim=(2, 3), keepdim=True) + 1e-8)
        h = F.max_pool2d(F.relu(h + p[f"{bias}.bias"].view(1, -1, 1, 1)), 2)
    return F.linear(h.flatten(1), p["body.layers.8.weight"]) + p["body.layers.9.bias"]


def test_iteration_zero_is_exactly_the_plain_cnn():
    torch.manual_seed(0)
    model = fmnist_small()
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        trace = model(x, iterations=0)
        expected = _plain_cnn_logits(model, x)
        assert trace.iterations == 0
        torch.testing.assert_close(trace.last, expected, atol=1e-5, rtol=1e-5)
        # and the first pass of an iterating call is that same CNN
        torch.testing.assert_close(model(x, iterations=3).first, trace.last)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_output_shapes_dtypes_and_parameter_counts(arch):
    shape, n_params = ARCHS[arch]
    model = build_model(arch)
    assert sum(p.numel() for p in model.parameters()) == n_params
    x = torch.rand(2, *shape)
    trace = model(x, iterations=2, layers=None)
    assert len(trace.logits) == 3 and len(trace.reconstruction) == 2 and len(trace.h_hat) == 3
    assert all(t.shape == (2, 10) and t.dtype == torch.float32 for t in trace.logits)
    assert trace.reconstruction[0].shape == trace.h.shape
    assert set(trace.forward) == set(model.taps)
    assert set(trace.feedback) == set(model.feedback_taps)
    for name in model.body_taps:
        assert len(trace.forward[name]) == 3 and len(trace.feedback[name]) == 2
        assert trace.feedback[name][0].shape == trace.forward[name][0].shape


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_gradient_reaches_every_parameter_through_all_iterations(arch):
    torch.manual_seed(0)
    model = build_model(arch)
    x = torch.rand(2, *ARCHS[arch][0], requires_grad=True)
    trace = model(x, iterations=2)
    # only the last logits: gradients must flow back through the feedback passes
    F.cross_entropy(trace.last, torch.tensor([1, 2])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_eta_one_equals_greedy_replacement():
    torch.manual_seed(0)
    model = fmnist_small()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        trace = model(x, iterations=2, eta=1.0)
        torch.testing.assert_close(trace.h_hat[1], trace.reconstruction[0])
        # by hand: feed g(k) straight in, with every remembered feedback replacing f
        state = InferenceState(eta=1.0)
        h = model.encoder(x, state)
        logits = model.body(h, state)
        for _ in range(2):
            logits = model.body(model.body.feedback(logits, state), state)
        torch.testing.assert_close(trace.last, logits)


def test_online_update_of_the_input_follows_eq6():
    torch.manual_seed(0)
    model = fmnist_small()
    with torch.no_grad():
        trace = model(torch.rand(2, 1, 28, 28), iterations=3, eta=0.3)
    for t in range(3):
        expected = trace.h_hat[t] + 0.3 * (trace.reconstruction[t] - trace.h_hat[t])
        torch.testing.assert_close(trace.h_hat[t + 1], expected)


def test_determinism_under_a_seed():
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = build_model("fmnist_adv")
        x = torch.rand(2, 1, 28, 28)
        outputs.append(model(x, iterations=2).avg)
    assert torch.equal(outputs[0], outputs[1])


def test_interleaved_calls_equal_separate_calls():
    torch.manual_seed(0)
    model = build_model("fmnist_adv")
    a, b = torch.rand(2, 1, 28, 28), torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        separate_a, separate_b = model(a, iterations=2).last, model(b, iterations=2).last
        # step two calls by hand, alternating between their states
        sa, sb = InferenceState(eta=model.eta), InferenceState(eta=model.eta)
        ha, hb = model.encoder(a, sa), model.encoder(b, sb)
        la, lb = model.body(ha, sa), model.body(hb, sb)
        for _ in range(2):
            ga, gb = model.body.feedback(la, sa), model.body.feedback(lb, sb)
            ha, hb = ha + model.eta * (ga - ha), hb + model.eta * (gb - hb)
            la, lb = model.body(ha, sa), model.body(hb, sb)
    torch.testing.assert_close(la, separate_a)
    torch.testing.assert_close(lb, separate_b)


def test_a_call_leaves_only_the_latents_decoding_reads():
    """Without autograd, the body's masks, indices and remembered feedback are dropped after
    the last pass (a compiled graph would write each one out); the encoder's latent layers
    make theirs only when decoding will read them."""
    torch.manual_seed(0)
    model = build_model("fmnist_small")
    x = torch.rand(2, 1, 28, 28)
    for decode, kept in ((False, ["TiedConv2d"]), (True, ["TiedConv2d", "AdaReLU", "AdaPool"])):
        state = InferenceState(eta=model.eta)
        with torch.no_grad():
            unroll(model, x, state, 2, "intact", decode)
        assert not [m for m in model.body.modules() if state.slot(m)]
        assert [type(m).__name__ for m in model.encoder.modules() if state.slot(m)] == kept


def test_trace_scoring_and_mask_statistics():
    torch.manual_seed(0)
    model = fmnist_small()
    with torch.no_grad():
        trace = model(torch.rand(2, 1, 28, 28), iterations=2, mask_stats=True)
    torch.testing.assert_close(trace.scored("avg"), torch.stack(trace.logits).mean(0))
    assert trace.scored("last") is trace.logits[-1]
    assert trace.mask_flips and all(len(v) == 2 for v in trace.mask_flips.values())
    flips = torch.stack([f for v in trace.mask_flips.values() for f in v])
    assert flips.shape[1] == 2 and flips.min() >= 0.0 and flips.max() <= 1.0 and flips.max() > 0
    with pytest.raises(ValueError, match="scoring"):
        trace.scored("best")


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.rand(2, 3, 28, 28), r"expects images \(N, 1, 28, 28\)"),
        (torch.rand(1, 28, 28), "add a batch dim"),
        (torch.rand(2, 1, 32, 32), r"got \(2, 1, 32, 32\)"),
        (torch.full((1, 1, 28, 28), float("nan")), "NaN"),
    ],
)
def test_bad_images_give_clear_errors(x, match):
    with pytest.raises(ValueError, match=match):
        fmnist_small()(x)


def test_bad_arguments_give_clear_errors():
    model = fmnist_small()
    x = torch.rand(1, 1, 28, 28)
    with pytest.raises(TypeError, match="uint8"):
        model((x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="iterations"):
        model(x, iterations=-1)
    with pytest.raises(ValueError, match="eta"):
        model(x, eta=0.0)
    with pytest.raises(ValueError, match="unknown layer"):
        model(x, layers=["V4"])
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet50")


def test_iterations_are_resolved_and_checked_in_one_place():
    """None means the model's own T; anything but an integer >= 0 is refused by name, wherever
    iterations enter (the engines, evaluation, extraction, Brain-Score call resolve_iterations).
    A comparison runs a plain CNN (T = 0) at 0 whatever T it asks for."""
    import re
    from pathlib import Path

    import numpy as np

    import neurocnnf
    from neurocnnf.models import compared_iterations, fmnist_pc, resolve_iterations

    cnnf, plain = fmnist_small(iterations=3), fmnist_small(iterations=0)
    assert resolve_iterations(cnnf, None) == 3 and resolve_iterations(cnnf, 0) == 0
    assert resolve_iterations(cnnf, np.int64(2)) == 2
    assert type(resolve_iterations(cnnf, np.int64(2))) is int
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=r"iterations must be an integer >= 0, got"):
            resolve_iterations(cnnf, bad)
        with pytest.raises(ValueError, match="iterations must be"):
            fmnist_pc(iterations=1)(torch.rand(1, 1, 28, 28), iterations=bad)
    assert compared_iterations(cnnf, 5) == 5 and compared_iterations(plain, 5) == 0
    with pytest.raises(ValueError, match="iterations must be"):
        compared_iterations(cnnf, -2)
    source = Path(neurocnnf.__file__).parent
    restated = [f"{path.relative_to(source)}:{n}" for path in source.rglob("*.py")
                if path.name != "protocol.py"
                for n, line in enumerate(path.read_text().splitlines(), 1)
                if re.search(r"\.iterations if \w+ is None|iterations is None else", line)]
    assert restated == [], f"resolve iterations with resolve_iterations: {restated}"


def test_the_call_is_defined_once_and_every_engine_reads_it():
    """The keyword arguments of a model call are the fields of models.Call; no engine restates
    them in its forward, and each refuses a keyword that is not one (CNN-F: or its halting)."""
    import inspect
    from dataclasses import fields

    from neurocnnf.models import CNNF, Call, PredictiveCodingNet, fmnist_pc

    names = {f.name for f in fields(Call)}
    assert names == {"iterations", "eta", "layers", "mask_stats", "decode", "feedback"}
    for engine in (CNNF, PredictiveCodingNet):
        assert not names & set(inspect.signature(engine.forward).parameters), engine
    x = torch.rand(2, 1, 28, 28)
    for model in (fmnist_small(iterations=1), fmnist_pc(iterations=1)):
        trace = model(x, iterations=2, layers=None, decode=True)
        assert len(trace.logits) == 3 and len(trace.decoded) == 3
        with pytest.raises((TypeError, ValueError), match="nope"):
            model(x, nope=1)
        with pytest.raises(TypeError):
            model(x, 2)  # options are keywords only
