"""Verification metrics: EER, AUC, FAR/FRR and threshold choice."""

from __future__ import annotations

import numpy as np
import pytest

from siamese.metrics import det_curve, equal_error_rate, far_frr, roc_auc, threshold_at_far, threshold_at_frr


def test_perfectly_separated_scores():
    labels = [1, 1, 1, 0, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]
    eer, threshold = equal_error_rate(labels, scores)
    assert eer == 0.0 and 0.3 < threshold <= 0.7
    assert roc_auc(labels, scores) == 1.0
    assert far_frr(labels, scores, threshold) == (0.0, 0.0)


def test_eer_of_a_known_overlap():
    # genuine 0.4..0.9, forgeries 0.1..0.6: at 0.5 one forgery of five accepted, one genuine rejected
    labels = [1] * 5 + [0] * 5
    scores = [0.9, 0.8, 0.7, 0.6, 0.45, 0.55, 0.4, 0.3, 0.2, 0.1]
    eer, threshold = equal_error_rate(labels, scores)
    assert eer == pytest.approx(0.2)
    far, frr = far_frr(labels, scores, threshold)
    assert (far + frr) / 2 == pytest.approx(0.2)


def test_far_frr_accepts_scores_equal_to_threshold():
    assert far_frr([1, 0], [0.5, 0.5], 0.5) == (1.0, 0.0)
    assert far_frr([1, 0], [0.5, 0.5], 0.50001) == (0.0, 1.0)


def test_single_class_gives_none_not_a_number():
    assert equal_error_rate([1, 1], [0.2, 0.3]) == (None, None)
    assert roc_auc([0, 0], [0.2, 0.3]) is None
    assert far_frr([1, 1], [0.2, 0.9], 0.5) == (None, 0.5)


def test_threshold_at_far_is_the_lowest_meeting_the_target():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(500), np.zeros(500)]
    scores = np.r_[rng.normal(0.7, 0.1, 500), rng.normal(0.4, 0.1, 500)]
    for target in (0.0, 0.01, 0.05, 0.2):
        threshold = threshold_at_far(labels, scores, target)
        far, _ = far_frr(labels, scores, threshold)
        assert far <= target
        lower = np.max(scores[scores < threshold])
        assert far_frr(labels, scores, lower)[0] > target, "a lower threshold would also have met it"


@pytest.mark.parametrize("with_forgeries", [True, False])
def test_threshold_at_frr_is_the_highest_meeting_the_target(with_forgeries):
    rng = np.random.default_rng(1)
    genuine = rng.normal(0.7, 0.1, 400)
    labels = np.r_[np.ones(400), np.zeros(300 if with_forgeries else 0)]
    scores = np.r_[genuine, rng.normal(0.4, 0.1, 300)[: 300 if with_forgeries else 0]]
    for target in (0.0, 0.01, 0.05, 0.2, 1.0):
        threshold = threshold_at_frr(labels, scores, target)
        _, frr = far_frr(labels, scores, threshold)
        assert frr <= target
        higher = np.min(genuine[genuine > threshold], initial=np.inf)
        if np.isfinite(higher):
            assert far_frr(labels, scores, higher)[1] > target, "a higher threshold would also have met it"


def test_threshold_at_frr_needs_genuine_trials():
    with pytest.raises(ValueError, match="genuine trials"):
        threshold_at_frr([0, 0], [0.2, 0.3], 0.05)


def test_det_curve_ends_are_reject_all_and_accept_all():
    far, frr, thresholds = det_curve([1, 0, 1, 0], [0.9, 0.2, 0.6, 0.7])
    assert (far[0], frr[0]) == (0.0, 1.0) and (far[-1], frr[-1]) == (1.0, 0.0)
    assert np.isfinite(thresholds).all() and np.all(np.diff(thresholds) < 0)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        equal_error_rate([1, 0, 1], [0.1, 0.2])
