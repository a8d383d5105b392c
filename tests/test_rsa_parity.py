"""neurocnnf.analysis.rsa against rsatoolbox 0.3.2 (a dev dependency) on the real
Kriegeskorte-92 RDMs and on synthetic RDMs with ties, and tau-a against brute force."""

import numpy as np
import pytest

from neurocnnf.analysis import rsa

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import boot_noise_ceiling  # noqa: E402
from rsatoolbox.rdm import RDMs, compare  # noqa: E402

RNG = np.random.default_rng(1)
TOLERANCE = 1e-10


def _brute_tau_a(a, b):
    """O(m^2) tau-a: sum of sign products over all pairs / (m(m-1)/2)."""
    signs = np.sign(a[:, None] - a[None, :]) * np.sign(b[:, None] - b[None, :])
    return signs[np.triu_indices(len(a), 1)].sum() / (len(a) * (len(a) - 1) / 2)


def _tied_rdms(count, n=20, levels=5):
    """Symmetric (n, n) RDMs whose dissimilarities take only ``levels`` values: many ties."""
    out = []
    for _ in range(count):
        square = np.zeros((n, n))
        square[np.triu_indices(n, 1)] = RNG.integers(0, levels, n * (n - 1) // 2)
        out.append(square + square.T)
    return out


def _kriegeskorte():
    from neurocnnf.data import kriegeskorte92, load_brain_rdms

    return kriegeskorte92(), list(load_brain_rdms("kriegeskorte92", "human_IT").rdms)


def _toolbox(rdms):
    return RDMs(np.stack([rsa.upper(r) for r in rdms]))


@pytest.mark.parametrize("levels", [3, 10, 1000])
def test_tau_a_matches_brute_force_with_ties(levels):
    for _ in range(5):
        a = RNG.integers(0, levels, 300).astype(float)
        b = a * RNG.integers(0, 2, 300) + RNG.integers(0, levels, 300)  # related, with ties
        assert rsa.kendall_tau_a(a, b) == pytest.approx(_brute_tau_a(a, b), abs=TOLERANCE)
    constant = np.ones(50)
    assert rsa.kendall_tau_a(constant, RNG.standard_normal(50)) == 0.0


def test_tau_a_is_n_log_n_not_quadratic():
    import time

    a, b = RNG.standard_normal(200_000), RNG.standard_normal(200_000)
    start = time.perf_counter()
    rsa.kendall_tau_a(a, b)
    assert time.perf_counter() - start < 5.0  # a quadratic loop needs ~2e10 pair operations


@pytest.mark.parametrize("method", rsa.METHODS)
def test_compare_matches_rsatoolbox_with_ties(method):
    first, second = _tied_rdms(2)
    second = second + 2 * first  # related, so the values are not all near 0
    expected = compare(_toolbox([first]), _toolbox([second]), method)[0, 0]
    assert rsa.compare(first, second, method) == pytest.approx(expected, abs=TOLERANCE)


@pytest.mark.parametrize("method", ["spearman", "tau-a", "corr"])
def test_noise_ceiling_matches_rsatoolbox_with_ties(method):
    truth = _tied_rdms(1, levels=4)[0]
    subjects = [truth + noise for noise in _tied_rdms(5, levels=3)]
    with pytest.warns(UserWarning) if method == "tau-a" else _no_warning():
        expected = boot_noise_ceiling(_toolbox(subjects), method=method)
    assert rsa.noise_ceiling(subjects, method) == pytest.approx(expected, abs=TOLERANCE)


def test_a_resample_compares_the_entries_rsatoolbox_keeps():
    model, target = _tied_rdms(2, n=15)
    for _ in range(5):
        pick = RNG.integers(0, 15, 15)
        i, j = rsa.resampled_pairs(pick)
        ours = {m: rsa.compare_vectors(model[i, j], target[i, j], m) for m in rsa.METHODS}
        sample_model = _toolbox([model]).subsample_pattern("index", pick)
        sample_target = _toolbox([target]).subsample_pattern("index", pick)
        for method, value in ours.items():
            expected = compare(sample_model, sample_target, method)[0, 0]
            assert value == pytest.approx(expected, abs=TOLERANCE), method


@pytest.mark.data
@pytest.mark.parametrize("method", rsa.METHODS)
def test_kriegeskorte92_comparisons_and_ceiling_match_rsatoolbox(method):
    k92, subjects = _kriegeskorte()
    model = k92.rdms["macaque_IT"]
    expected = compare(_toolbox([model]), _toolbox(subjects), method).mean()
    assert rsa.evaluate(model, subjects, method) == pytest.approx(expected, abs=TOLERANCE)
    if method != "tau-a":
        expected_ceiling = boot_noise_ceiling(_toolbox(subjects), method=method)
    else:
        with pytest.warns(UserWarning, match="averaged ranks"):
            expected_ceiling = boot_noise_ceiling(_toolbox(subjects), method=method)
    lower, upper = rsa.noise_ceiling(subjects, method)
    assert (lower, upper) == pytest.approx(expected_ceiling, abs=TOLERANCE)
    assert lower < upper


@pytest.mark.data
def test_kriegeskorte92_ceiling_from_ranks_differs_from_raw_averages():
    """The issue's bias: pooling raw RDMs (the old ceiling) is not rsatoolbox's upper bound."""
    _, subjects = _kriegeskorte()
    vectors = np.stack([rsa.upper(r) for r in subjects])
    raw_upper = np.mean([rsa.compare_vectors(v, vectors.mean(0), "spearman") for v in vectors])
    assert abs(rsa.noise_ceiling(subjects, "spearman")[1] - raw_upper) > 1e-4


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


def _recorded_dual_bootstrap(monkeypatch, models, subjects, method, n_boot=25):
    """rsatoolbox's eval_dual_bootstrap of fixed models, and the (subject, stimulus) draws it
    made (recorded from its own bootstrap_sample)."""
    from rsatoolbox.inference import evaluate
    from rsatoolbox.model import ModelFixed

    draws, original = [], evaluate.bootstrap_sample

    def recording(*args, **kwargs):
        sample, rdm_idx, pattern_idx = original(*args, **kwargs)
        draws.append((np.asarray(rdm_idx).copy(), np.asarray(pattern_idx).copy()))
        return sample, rdm_idx, pattern_idx

    monkeypatch.setattr(evaluate, "bootstrap_sample", recording)
    np.random.seed(3)
    fixed = [ModelFixed(f"m{k}", _toolbox([m])) for k, m in enumerate(models)]
    result = evaluate.eval_dual_bootstrap(fixed, _toolbox(subjects), method=method, N=n_boot)
    return result, draws


@pytest.mark.parametrize("method", ["spearman", "corr"])
def test_dual_bootstrap_matches_rsatoolbox(monkeypatch, method):
    from neurocnnf.analysis.rsa_inference import dual_bootstrap

    truth = _tied_rdms(1, n=12, levels=50)[0]
    subjects = [truth + 3 * noise for noise in _tied_rdms(5, n=12, levels=50)]
    models = [truth + 10 * noise for noise in _tied_rdms(3, n=12, levels=50)]
    expected, draws = _recorded_dual_bootstrap(monkeypatch, models, subjects, method)
    ours = dual_bootstrap(np.stack(models), np.stack(subjects), method, samples=draws)
    assert ours.evaluations == pytest.approx(expected.evaluations[:, :, 0, 0, :], abs=TOLERANCE,
                                             nan_ok=True)
    assert ours.noise_ceiling == pytest.approx(
        expected.noise_ceiling[:, :, 0, :].transpose(1, 0, 2), abs=TOLERANCE, nan_ok=True)
    assert ours.variances == pytest.approx(expected.variances, abs=TOLERANCE)
    assert ours.model_variance() == pytest.approx(expected.model_var, abs=TOLERANCE)
    pairs = np.array([(0, 1), (0, 2), (1, 2)])
    assert ours.difference_variance(pairs) == pytest.approx(expected.diff_var, abs=TOLERANCE)
    p_matrix = expected.test_pairwise()
    assert ours.pair_tests(pairs) == pytest.approx(p_matrix[pairs[:, 0], pairs[:, 1]],
                                                   abs=TOLERANCE)


def test_fdr_matches_rsatoolbox_model_plot_rule():
    from neurocnnf.analysis.rsa_inference import fdr_significant

    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205])
    # BH at 0.05 with m = 8: criteria 0.00625 k; the largest p below its criterion is 0.008
    # (0.0125 at k = 2), and every p below that criterion is significant
    assert fdr_significant(p, 0.05).tolist() == [True, True] + [False] * 6
    # at 0.2: 0.205 misses 0.2 (k = 8), 0.074 passes 0.175 (k = 7): p < 0.175 is significant
    assert fdr_significant(p, 0.2).tolist() == [True] * 7 + [False]
