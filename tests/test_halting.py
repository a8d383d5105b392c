"""Adaptive halting: model(x, halt=tol, max_iterations=T) stops each image when it settles."""

import numpy as np
import pytest
import torch

from neurocnnf.activations import extract_dataset
from neurocnnf.analysis.difficulty import settling_iteration
from neurocnnf.models import fmnist_small
from neurocnnf.models.engine import relative_logit_change

T = 4


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return fmnist_small(iterations=T).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def _changes(model, x):
    """(T, N) relative logit change of the fixed-T run at t = 1..T, and that run."""
    with torch.no_grad():
        trace = model(x, layers=None, mask_stats=True)
    return torch.stack([relative_logit_change(trace.logits[t], trace.logits[t - 1])
                        for t in range(1, T + 1)]), trace


def _counting_body_rows(model):
    """A list that receives the batch size of every forward pass of the body."""
    rows = []
    handle = model.body.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    return rows, handle


def test_tolerance_zero_is_the_fixed_run(model, images):
    with torch.no_grad():
        fixed = model(images, layers=None, mask_stats=True, decode=True)
        halted = model(images, halt=0.0, max_iterations=T, layers=None, mask_stats=True,
                       decode=True)
    assert torch.equal(halted.halted_at, torch.full((8,), T))
    assert halted.computed.all() and fixed.halted_at is None
    for name in ("logits", "h_hat", "reconstruction", "decoded"):
        assert all(torch.equal(a, b) for a, b in
                   zip(getattr(fixed, name), getattr(halted, name), strict=True)), name
    for kind in ("forward", "feedback", "mask_flips"):
        a, b = getattr(fixed, kind), getattr(halted, kind)
        assert a.keys() == b.keys()
        assert all(torch.equal(u, v) for k in a for u, v in zip(a[k], b[k], strict=True)), kind


def test_an_image_stable_at_t0_costs_one_pass(model, images):
    change, fixed = _changes(model, images)
    stable = int(change[0].argmin())  # made "stable at t = 0" by a tolerance just above it
    tolerance = float(change[0, stable]) * 1.0001
    assert (change[0] >= tolerance).sum() == 7  # the other images move more
    rows, handle = _counting_body_rows(model)
    with torch.no_grad():
        trace = model(images, halt=tolerance, max_iterations=T, layers=None)
    handle.remove()
    assert int(trace.halted_at[stable]) == 1
    assert trace.computed[:, stable].tolist() == [True, True, False, False, False]
    # the pass at t = 0 plus one feedback iteration; every image pays exactly its iterations
    assert sum(rows) == int((trace.halted_at + 1).sum())
    # it answers with the logits of that iteration and repeats them (and its features)
    assert torch.equal(trace.logits[1][stable], trace.last[stable])
    torch.testing.assert_close(trace.last[stable], fixed.logits[1][stable])
    for name in model.body_taps:
        assert torch.equal(trace.forward[name][T][stable], trace.forward[name][1][stable])


def test_half_the_batch_halting_at_t1_does_less_work(model, images):
    change, fixed = _changes(model, images)
    ordered = change[0].sort().values
    tolerance = float(ordered[3] + ordered[4]) / 2  # exactly 4 of 8 below it
    fixed_rows, handle = _counting_body_rows(model)
    with torch.no_grad():
        model(images)
    handle.remove()
    rows, handle = _counting_body_rows(model)
    with torch.no_grad():
        trace = model(images, halt=tolerance, max_iterations=T, mask_stats=True)
    handle.remove()
    easy = change[0] < tolerance
    assert easy.sum() == 4 and (trace.halted_at[easy] == 1).all()
    assert fixed_rows == [8] * (T + 1)
    assert rows[:2] == [8, 8] and all(r <= 4 for r in rows[2:])
    assert sum(rows) < sum(fixed_rows)
    # the trace stays rectangular; images that went on match the fixed run
    assert len(trace.logits) == T + 1 and all(z.shape == (8, 10) for z in trace.logits)
    assert all(len(v) == T and v[-1].shape == (8,) for v in trace.mask_flips.values())
    assert all((v[-1][easy] == 0).all() for v in trace.mask_flips.values())
    late = trace.halted_at == T
    torch.testing.assert_close(trace.last[late], fixed.last[late])


def test_difficulty_analysis_reads_halted_logits(model, images):
    change, _ = _changes(model, images)
    ordered = change[1].sort().values
    tolerance = float(ordered[3] + ordered[4]) / 2  # between two images' changes
    with torch.no_grad():
        trace = model(images, halt=tolerance, max_iterations=T)
    logits = torch.stack(trace.logits, 1).numpy()  # (N, T+1, classes), as extraction stores
    settled = settling_iteration(logits, tolerance)
    halted = trace.halted_at.numpy()
    early = halted < T
    assert early.any()
    # the last iteration whose logits were already final is the one before halting
    assert (settled[early] == halted[early] - 1).all()


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_extraction_stores_halted_at(model, images, tmp_path, suffix):
    from neurocnnf.stimuli import StimulusSet
    from neurocnnf.stimuli.sets import _base_metadata

    pixels = (images * 255).round().to(torch.uint8)
    stimuli = StimulusSet("halt8", _base_metadata([f"s{i}" for i in range(8)]), images=pixels)
    change, _ = _changes(model, pixels.float() / 255)
    tolerance = float(change[1].sort().values[3:5].mean())
    ds = extract_dataset(model, stimuli, tmp_path / f"acts{suffix}", layers=["conv2", "logits"],
                         iterations=T, halt=tolerance, progress=False).set_coords("halted_at")
    with torch.no_grad():
        trace = model(pixels.float() / 255, halt=tolerance, max_iterations=T)
    np.testing.assert_array_equal(ds["halted_at"].values, trace.halted_at.numpy())
    assert "halted_at" in ds["conv2"].coords and ds["conv2"].sizes["iteration"] == T + 1
    stopped = int(np.argmin(ds["halted_at"].values))
    t = int(ds["halted_at"].values[stopped])
    assert t < T and (ds["logit_change"].values[stopped, t + 1:] == 0).all()


@pytest.mark.data
def test_difficulty_analysis_reports_where_images_halted(model, tmp_path):
    import pandas as pd

    from neurocnnf.activations import extract
    from neurocnnf.pipelines.difficulty import run_difficulty
    from neurocnnf.stimuli import load_stimuli, perturb

    noisy = perturb(load_stimuli("fashion_mnist:test:16"), "noise", [0.0, 0.3])
    store = extract(model, noisy, tmp_path / "d.nc", layers=["logits", "probabilities"],
                    iterations=T, halt=0.05, progress=False)
    run_difficulty(store, tmp_path / "difficulty")
    table = pd.read_csv(tmp_path / "difficulty" / "difficulty.csv")
    halted = table["halted_at"].to_numpy()
    assert halted.min() >= 1 and halted.max() <= T
    early = halted < T
    assert (table["settling_iteration"][early] <= halted[early] - 1).all()


def test_halting_trains(model, images):
    trace = model(images, halt=1e9, max_iterations=T)
    assert (trace.halted_at == 1).all()
    trace.last.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()


def test_bad_halting_arguments_are_clear_errors(model, images):
    with pytest.raises(ValueError, match="halt must be a tolerance >= 0"):
        model(images, halt=-0.1)
    with pytest.raises(ValueError, match="pass halt=tolerance too"):
        model(images, max_iterations=3)
    with pytest.raises(ValueError, match="not both"):
        model(images, halt=0.1, iterations=2, max_iterations=3)
