"""The ablation twin (``recurrent=False``): the generative loss as a regulariser, no recurrence.

Its feedback is computed and trained like CNN-F's, but never enters the forward pass: the
logits of every iteration are the plain pass's, and its training loss is CE on the plain pass
plus exactly the reconstruction terms CNN-F's first feedback pass gets from the same tensors.
"""

import torch

from neurocnnf.models import build_from_config, fmnist_small
from neurocnnf.train import load_model, save_model
from neurocnnf.train.config import LossConfig, load_config
from neurocnnf.train.losses import reconstruction_loss, standard_loss


def _pair(iterations: int = 5):
    torch.manual_seed(0)
    cnnf = fmnist_small(iterations=iterations)
    twin = fmnist_small(iterations=iterations, recurrent=False)
    twin.load_state_dict(cnnf.state_dict())
    return cnnf.eval(), twin.eval()


def test_twin_logits_at_iteration_0_equal_those_at_every_iteration():
    cnnf, twin = _pair()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    trace = twin(x, iterations=5)
    plain = twin(x, iterations=0).logits[0]
    assert all(torch.equal(z, plain) for z in trace.logits)
    assert all(torch.equal(h, trace.h) for h in trace.h_hat)
    # the same weights with feedback in the loop: the iterations do change CNN-F's logits,
    # and its plain pass is the twin's
    full = cnnf(x, iterations=5)
    assert torch.equal(full.logits[0], plain)
    assert not torch.allclose(full.logits[-1], plain)
    # the generative pass itself runs: the twin's reconstruction is CNN-F's first one
    assert len(trace.reconstruction) == 5
    torch.testing.assert_close(trace.reconstruction[0], full.reconstruction[0])


def test_twin_loss_is_plain_ce_plus_cnnf_reconstruction_terms_on_the_same_tensors():
    cnnf, twin = _pair()
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    y = torch.arange(8) % 10
    config = LossConfig(recon_weight=0.1, inter_weight=0.1)
    taps = twin.reconstruction_taps
    terms = standard_loss(twin(x, layers=taps), y, taps, config)
    one_feedback_pass = cnnf(x, iterations=1, layers=taps)  # CNN-F's terms from the plain pass
    expected_rec = reconstruction_loss(one_feedback_pass, taps, config)
    expected_ce = torch.nn.functional.cross_entropy(one_feedback_pass.logits[0], y)
    assert float(expected_rec.detach()) > 0
    torch.testing.assert_close(terms.reconstruction, expected_rec.detach())
    torch.testing.assert_close(terms.total, expected_ce + expected_rec)
    # the reconstruction loss trains the feedforward weights too (tied: the regulariser)
    twin.zero_grad()
    reconstruction_loss(twin(x, layers=taps), taps, config).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in twin.parameters())


def test_twin_survives_a_checkpoint_and_trains_from_a_config_option(tmp_path):
    _, twin = _pair()
    assert twin.config["recurrent"] is False
    assert "recurrent" not in fmnist_small().config  # shipped checkpoints stay as they are
    rebuilt = build_from_config(twin.config, iterations=5)
    assert rebuilt.recurrent is False
    save_model(twin, tmp_path / "twin.safetensors")
    loaded = load_model(tmp_path / "twin.safetensors")
    assert loaded.recurrent is False and loaded.config == twin.config
    config = load_config("fmnist-small", ["model.iterations=5", "model.options.recurrent=false"])
    assert config.model.options == {"recurrent": False}
