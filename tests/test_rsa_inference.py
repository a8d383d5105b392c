"""Planted truth for the model-to-brain inference (neurocnnf.analysis.rsa_inference) on
synthetic subjects and models: small simulations, each a few seconds."""

import numpy as np
import pytest
from scipy import stats

from neurocnnf.analysis.rsa import noise_ceiling, pool, rdm
from neurocnnf.analysis.rsa_inference import dual_bootstrap, subject_scores, vectors

N_STIMULI, N_SUBJECTS, DIMS = 16, 6, 8


def _world(rng, n=N_STIMULI, subjects=N_SUBJECTS, subject_noise=1.0):
    """Latent stimulus patterns (n, DIMS) and each subject's noisy RDM of them."""
    latent = rng.standard_normal((n, DIMS))
    rdms = np.stack([rdm(latent + subject_noise * rng.standard_normal(latent.shape))
                     for _ in range(subjects)])
    return latent, rdms


def _model(latent, rng, noise):
    return rdm(latent + noise * rng.standard_normal(latent.shape))


def test_the_pooled_subject_rdm_reaches_the_upper_ceiling():
    rng = np.random.default_rng(0)
    _, subjects = _world(rng)
    pooled = np.zeros((N_STIMULI, N_STIMULI))
    pooled[np.triu_indices(N_STIMULI, 1)] = pool(vectors(subjects), "spearman")
    pooled = pooled + pooled.T
    score = subject_scores(pooled[None], subjects).mean()
    assert score == pytest.approx(noise_ceiling(list(subjects))[1], abs=1e-12)


def test_a_shuffled_model_sits_at_chance():
    rng = np.random.default_rng(1)
    latent, subjects = _world(rng, n=30)
    model = _model(latent, rng, 0.3)
    shuffles = [rng.permutation(30) for _ in range(20)]
    models = np.stack([model] + [model[np.ix_(p, p)] for p in shuffles])
    result = dual_bootstrap(models, subjects, n_boot=100)
    low, high = result.percentile_ci().T
    assert low[0] > 0.15  # the real model is far above chance
    assert abs(subject_scores(models[1:], subjects).mean()) < 0.05
    assert ((low[1:] < 0) & (high[1:] > 0)).mean() >= 0.8


def _truth(rng, draws=1500):
    """The expected similarity of the fixed model rule with one subject on N_STIMULI new
    stimuli: what the mean over subjects estimates."""
    values = []
    for _ in range(draws):
        latent, subjects = _world(rng, subjects=1)
        values.append(subject_scores(_model(latent, rng, 1.0)[None], subjects)[0, 0])
    return float(np.mean(values))


def test_the_interval_covers_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    truth = _truth(rng)
    covered = []
    for _ in range(40):
        latent, subjects = _world(rng)
        model = _model(latent, rng, 1.0)
        result = dual_bootstrap(model[None], subjects, n_boot=100,
                                seed=int(rng.integers(1 << 30)))
        estimate = subject_scores(model[None], subjects).mean()
        half = stats.t.ppf(0.975, result.dof) * result.sem()[0]
        covered.append(abs(estimate - truth) <= half)
    assert 0.85 <= np.mean(covered) <= 1.0


def test_a_planted_iteration_effect_is_found_and_a_null_one_is_not():
    rng = np.random.default_rng(3)
    found, false_alarms = [], []
    for _ in range(25):
        latent, subjects = _world(rng, n=24)
        # iteration 0 far noisier than the last one (planted), or two equally noisy (null)
        models = np.stack([_model(latent, rng, 3.0), _model(latent, rng, 0.3),
                           _model(latent, rng, 3.0)])
        result = dual_bootstrap(models, subjects, n_boot=100, seed=int(rng.integers(1 << 30)))
        planted, null = result.pair_tests(np.array([(0, 1), (0, 2)]))
        found.append(planted < 0.05)
        false_alarms.append(null < 0.05)
    assert np.mean(found) >= 0.8
    assert np.mean(false_alarms) <= 0.16  # nominal 0.05: at most 4 of 25
