"""Requested time bins -> weights of the iterations (numpy only; the cross-check against
Brain-Score's own temporal alignment runs where brainscore_vision is installed)."""

import numpy as np
import pytest

from neurocnnf.activations.timebins import TimeBins
from neurocnnf.brainscore.regions import REGION_TIME_BINS, default_time_bins

KAR2019_BINS = [(start, start + 10) for start in range(70, 250, 10)]


def test_majajhong_it_bin_mixes_iterations_0_to_2_by_overlap():
    # IT windows: t0 70-110, t1 110-150, t2 150-190, t3 190-230, t4 230-... ms
    weights = default_time_bins()["IT"].weights([(70, 170)], iterations=4)
    np.testing.assert_allclose(weights, [[40 / 100, 40 / 100, 20 / 100, 0, 0]])
    nearest = default_time_bins()["IT"].weights([(70, 170)], iterations=4, mode="nearest")
    np.testing.assert_array_equal(nearest, [[1, 0, 0, 0, 0]])  # the feedforward twin only


def test_bins_outside_the_windows_take_the_first_or_settled_iteration():
    bins = TimeBins(70, 40)
    weights = bins.weights([(0, 50), (40, 90), (300, 400), (120, 120), (230, 230)], iterations=2)
    np.testing.assert_allclose(weights, [[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]])
    assert np.allclose(weights.sum(axis=1), 1)
    with pytest.raises(ValueError, match="ends before it starts"):
        bins.weights([(100, 90)], iterations=2)
    with pytest.raises(ValueError, match="unknown time-bin mode 'spikes'"):
        bins.weights([(70, 170)], iterations=2, mode="spikes")


def test_kar2019_bins_walk_through_every_iteration():
    weights = default_time_bins()["IT"].weights(KAR2019_BINS, iterations=4)
    mean_iteration = weights @ np.arange(5)
    assert mean_iteration[0] == 0 and mean_iteration[-1] == 4
    assert (np.diff(mean_iteration) >= 0).all() and len(set(mean_iteration)) == 5


def test_every_region_has_documented_windows():
    assert set(REGION_TIME_BINS) == {"V1", "V2", "V4", "IT"}
    assert REGION_TIME_BINS["V1"].start_ms <= REGION_TIME_BINS["IT"].start_ms


def test_matches_brainscores_own_portion_alignment_inside_the_windows():
    temporal = pytest.importorskip("brainscore_vision.model_helpers.brain_transformation.temporal")
    bins = TimeBins(70, 40)
    windows = list(zip(bins.starts(4), bins.ends(4), strict=True))
    requested = [(70, 170), (75, 95), (100, 260), *KAR2019_BINS]
    theirs = temporal.time_align(windows, requested, mode="portion")
    theirs = theirs / theirs.sum(axis=1, keepdims=True)  # as their assembly_time_align does
    np.testing.assert_allclose(bins.weights(requested, iterations=4), theirs)
