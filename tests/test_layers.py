"""Layers: tied weights, adjoint feedback, the MAP latents of eqs. 4-5, per-call state."""

import pytest
import torch
import torch.nn.functional as F

from neurocnnf.nn import (
    AdaPool,
    AdaReLU,
    FeedbackNorm,
    InferenceState,
    PreActResidual,
    RMSNorm,
    TiedConv2d,
    TiedLinear,
)
from neurocnnf.nn import functional as cf


def test_conv_feedback_uses_the_forward_parameter_and_moves_with_it():
    conv = TiedConv2d(3, 5, 3, padding=1)
    assert [name for name, _ in conv.named_parameters()] == ["weight"]
    state = InferenceState()
    x = torch.randn(2, 3, 8, 8)
    conv(x, state)
    g = torch.randn(2, 5, 8, 8)
    before = conv.feedback(g, state)
    optimizer = torch.optim.SGD(conv.parameters(), lr=0.5)
    (conv(x, state).pow(2).sum()).backward()
    optimizer.step()
    after = conv.feedback(g, state)
    expected = F.conv_transpose2d(g, conv.weight, padding=1)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected)


def test_linear_feedback_is_the_transpose_of_the_one_weight():
    linear = TiedLinear(7, 4)
    assert len(list(linear.parameters())) == 1
    g = torch.randn(3, 4)
    torch.testing.assert_close(linear.feedback(g, InferenceState()), g @ linear.weight)


def _adjoint_gap(layer, x_shape, state):
    x = torch.randn(*x_shape, dtype=torch.float64)
    y_of_x = layer(x, state)
    y = torch.randn_like(y_of_x)
    return (y_of_x * y).sum().item(), (x * layer.feedback(y, state)).sum().item()


def test_conv_transpose_feedback_is_the_adjoint_including_stride_two():
    for stride, size in [(1, 9), (2, 8), (2, 9)]:
        layer = TiedConv2d(3, 4, 3, stride=stride, padding=1).double()
        state = InferenceState()
        lhs, rhs = _adjoint_gap(layer, (2, 3, size, size), state)
        assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs))
        y = layer(torch.randn(2, 3, size, size, dtype=torch.float64), state)
        assert layer.feedback(y, state).shape == (2, 3, size, size)


def test_linear_feedback_is_the_adjoint():
    layer = TiedLinear(6, 3).double()
    lhs, rhs = _adjoint_gap(layer, (4, 6), InferenceState())
    assert abs(lhs - rhs) < 1e-10


def test_rms_norm_gives_unit_rms_per_sample_and_channel():
    x = torch.randn(3, 4, 5, 5) * torch.tensor([0.1, 1.0, 10.0, 100.0]).view(1, 4, 1, 1)
    y = RMSNorm()(x, InferenceState())
    rms = y.pow(2).mean(dim=(2, 3)).sqrt()
    torch.testing.assert_close(rms, torch.ones(3, 4), atol=1e-4, rtol=1e-4)
    g = torch.randn(3, 4, 5, 5) * 7
    out = FeedbackNorm().feedback(g, InferenceState())
    torch.testing.assert_close(out.pow(2).mean(dim=(2, 3)).sqrt(), torch.ones(3, 4))


def test_ada_relu_mask_eq4_on_hand_made_tensors():
    f = torch.tensor([[2.0, -1.0, 3.0, -2.0, 0.5]])
    g = torch.tensor([[1.0, -1.0, -1.0, 2.0, 0.0]])
    assert cf.relu_mask(F.relu(f)).tolist() == [[1.0, 0.0, 1.0, 0.0, 1.0]]
    # same sign -> on (including f<0, g<0), opposite sign or g == 0 -> off
    assert cf.ada_relu_mask(f, g).tolist() == [[1.0, 1.0, 0.0, 0.0, 0.0]]
    # 0/1 in the features' dtype, constants for autograd
    leaf = f.clone().requires_grad_()
    for mask in (cf.relu_mask(F.relu(leaf)), cf.ada_relu_mask(leaf, g)):
        assert mask.dtype == f.dtype and not mask.requires_grad


def test_ada_relu_layer_iteration0_relu_then_online_update_and_sign_mask():
    relu = AdaReLU()
    state = InferenceState(eta=0.5)
    f = torch.tensor([[2.0, -1.0, 3.0, -2.0]])
    assert relu(f, state).tolist() == [[2.0, 0.0, 3.0, 0.0]]
    g = torch.tensor([[1.0, -3.0, -1.0, 2.0]])
    # feedback passes g through the iteration-0 mask and remembers g
    assert relu.feedback(g, state).tolist() == [[1.0, 0.0, -1.0, 0.0]]
    out = relu(f, state)
    updated = f + 0.5 * (g - f)  # [1.5, -2.0, 1.0, 0.0]: third unit disagrees with g
    assert out.tolist() == (updated * ((updated * g) > 0)).tolist() == [[1.5, -2.0, 0.0, 0.0]]
    # the feedback keeps its dtype (bfloat16 under autocast) whatever the mask's
    assert relu.feedback(g.bfloat16(), state).dtype == torch.bfloat16


def test_ada_pool_eq5_max_where_g_nonnegative_min_where_negative():
    f = torch.tensor([[[[1.0, 5.0, -1.0, 0.0],
                        [-3.0, 2.0, 4.0, -6.0],
                        [0.5, 0.25, 7.0, 8.0],
                        [1.5, -0.5, 9.0, -9.0]]]])
    out0, _ = cf.ada_pool(f, None)
    assert out0.flatten().tolist() == [5.0, 4.0, 1.5, 9.0]
    g = torch.tensor([[[[1.0, -1.0], [0.0, -2.0]]]])
    out, indices = cf.ada_pool(f, g)
    assert out.flatten().tolist() == [5.0, -6.0, 1.5, -9.0]
    assert indices.flatten().tolist() == [1, 7, 12, 15]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_pooling_sign_is_plus_one_at_zero_and_minus_zero(dtype):
    """Eq. 5's choice: the max where g >= 0 (both zeros, tiny and huge values), the min where
    g < 0; the sign in the features' dtype."""
    g = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 3.0, -3.0, float("inf"), -float("inf")])
    for values in (g.to(dtype), torch.finfo(dtype).tiny * torch.tensor([1.0, -1.0]).to(dtype)):
        expected = torch.where(values >= 0, 1.0, -1.0).to(torch.float32)
        assert torch.equal(cf._sign(values, torch.float32), expected)
    assert cf._sign(g, dtype).dtype == dtype


@pytest.mark.parametrize("size", [(8, 8), (7, 9)])
def test_ada_pool_equals_separate_max_and_min_pooling_with_ties_and_gradients(size):
    """The one-pooling implementation against eq. 5 written out (max-pool of f, max-pool of
    -f, chosen by the sign of g): values, indices (first of tied elements) and gradients."""
    generator = torch.Generator().manual_seed(0)
    f = torch.randint(-2, 3, (3, 4, *size), generator=generator).float()  # many ties and zeros
    g = torch.randint(-1, 2, (3, 4, size[0] // 2, size[1] // 2), generator=generator).float()
    weights = torch.randn(g.shape, generator=generator)

    def eq5(f):
        top, top_index = F.max_pool2d(f, 2, return_indices=True)
        neg_bottom, bottom_index = F.max_pool2d(-f, 2, return_indices=True)
        return (torch.where(g >= 0, top, -neg_bottom),
                torch.where(g >= 0, top_index, bottom_index))

    f1, f2 = f.clone().requires_grad_(), f.clone().requires_grad_()
    (out, indices), (expected, expected_indices) = cf.ada_pool(f1, g), eq5(f2)
    assert torch.equal(out, expected) and torch.equal(indices, expected_indices)
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    assert torch.equal(f1.grad, f2.grad)
    by_func = torch.func.grad(lambda f: (cf.ada_pool(f, g)[0] * weights).sum())(f)
    assert torch.equal(by_func, f1.grad)
    f3, f4 = f.clone().requires_grad_(), f.clone().requires_grad_()  # iteration 0: max-pooling
    (cf.ada_pool(f3, None)[0] * weights).sum().backward()
    (F.max_pool2d(f4, 2) * weights).sum().backward()
    assert torch.equal(f3.grad, f4.grad)
    with torch.no_grad():  # the inference path (pools a channels_last copy on CPU)
        plain = F.max_pool2d(f, 2, return_indices=True)
        for feedback, (value, index) in ((g, eq5(f)), (None, plain)):
            out, indices = cf.ada_pool(f, feedback)
            assert torch.equal(out, value) and torch.equal(indices, index)
            assert out.is_contiguous()
            nhwc = f.contiguous(memory_format=torch.channels_last)  # stays in its layout
            out, indices = cf.ada_pool(nhwc, feedback)
            assert torch.equal(out, value) and torch.equal(indices, index)
            assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_spread_windows_equals_nearest_upsampling(kernel_size):
    x = torch.randn(3, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(x, scale_factor=kernel_size, mode="nearest")
    assert torch.equal(cf.spread_windows(x, kernel_size), expected)
    nhwc = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(cf.spread_windows(nhwc, kernel_size), expected)


def test_ada_pool_feedback_routes_to_argmax_then_to_the_latent_choice():
    pool = AdaPool(2)
    state = InferenceState()
    f = torch.tensor([[[[1.0, 5.0], [-3.0, 2.0]]]])
    pool(f, state)
    g = torch.tensor([[[[-2.0]]]])
    # iteration 0: everything goes to the argmax position
    assert pool.feedback(g, state).flatten().tolist() == [0.0, -2.0, 0.0, 0.0]
    out = pool(f, state)  # g < 0 -> min is taken
    assert out.item() == -3.0
    assert pool.feedback(torch.tensor([[[[4.0]]]]), state).flatten().tolist() == [0, 0, 4.0, 0]


def test_state_belongs_to_the_call_interleaved_states_do_not_mix():
    relu = AdaReLU()
    a, b = InferenceState(), InferenceState()
    x = torch.randn(2, 6)
    relu(x, a)
    relu(-x, b)
    ga = torch.ones(2, 6)
    assert torch.equal(relu.feedback(ga, a), (x > 0).float())
    assert torch.equal(relu.feedback(ga, b), (x < 0).float())
    assert not hasattr(relu, "mask") and not hasattr(relu, "g")


def test_residual_block_feedback_shapes_with_projection():
    block = PreActResidual(16, 32, stride=2)
    state = InferenceState()
    y = block(torch.randn(2, 16, 8, 8), state)
    assert y.shape == (2, 32, 4, 4)
    assert block.feedback(torch.randn_like(y), state).shape == (2, 16, 8, 8)


def test_online_update_eta_one_is_replacement():
    f, g = torch.randn(5), torch.randn(5)
    assert torch.equal(cf.online_update(f, g, 1.0), g)
    torch.testing.assert_close(cf.online_update(f, g, 0.1), 0.9 * f + 0.1 * g)


@pytest.mark.parametrize("eta", [0.1, 0.3, 1e-3])
def test_online_update_is_eq7_as_written_bit_for_bit_in_fs_layout_with_its_gradients(eta):
    generator = torch.Generator().manual_seed(0)
    f = torch.randn(4, 8, 6, 6, generator=generator).contiguous(memory_format=torch.channels_last)
    g = torch.randn(4, 8, 6, 6, generator=generator)
    f1, g1 = f.clone().requires_grad_(), g.clone().requires_grad_()
    f2, g2 = f.clone().requires_grad_(), g.clone().requires_grad_()
    ours, written = cf.online_update(f1, g1, eta), f2 + eta * (g2 - f2)
    assert torch.equal(ours, written)
    assert ours.is_contiguous(memory_format=torch.channels_last)  # as f is
    weights = torch.randn(f.shape, generator=generator)
    (ours * weights).sum().backward()
    (written * weights).sum().backward()
    assert torch.equal(f1.grad, f2.grad) and torch.equal(g1.grad, g2.grad)


def test_rms_normalize_is_the_formula_forward_and_its_gradient_backward():
    """The hand-written backward (``_RMSNormalize``) against autograd's numerical gradient,
    and the forward bit for bit equal to x * rsqrt(mean(x^2) + eps)."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(cf.rms_normalize, (x,))
    f = torch.randn(4, 8, 6, 6)
    expected = f * torch.rsqrt(f.pow(2).mean(dim=(2, 3), keepdim=True) + cf.RMS_EPS)
    assert torch.equal(cf.rms_normalize(f), expected)
