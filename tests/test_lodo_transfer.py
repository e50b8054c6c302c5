"""bench.lodo_transfer: a threshold set at one set of writers' EER point, scored on another's."""

import numpy as np
import pytest

from bench.lodo_transfer import carried, own_genuine, pooled


def _trials(genuine: list[float], forged: list[float]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two writers sharing the given genuine and forged scores."""
    half_g, half_f = len(genuine) // 2, len(forged) // 2
    return {
        "b": (np.array([1] * (len(genuine) - half_g) + [0] * (len(forged) - half_f)),
              np.array(genuine[half_g:] + forged[half_f:])),
        "a": (np.array([1] * half_g + [0] * half_f), np.array(genuine[:half_g] + forged[:half_f])),
    }


def test_pooled_joins_every_writers_trials():
    labels, scores = pooled(_trials([0.9, 0.8], [0.1, 0.2]))
    assert sorted(zip(labels.tolist(), scores.tolist())) == [(0, 0.1), (0, 0.2), (1, 0.8), (1, 0.9)]


def test_a_threshold_that_carries_keeps_the_held_out_errors_at_their_eer():
    calibration = _trials([0.7, 0.8, 0.9, 0.95], [0.1, 0.2, 0.3, 0.4])
    found = carried(calibration, _trials([0.7, 0.75, 0.8, 0.9], [0.2, 0.3, 0.35, 0.45]))
    assert 0.4 < found["threshold"] <= 0.7
    assert found["eer_skilled"] == found["far_skilled"] == found["frr"] == found["hter"] == 0.0


def test_a_held_out_set_scoring_higher_lets_its_forgeries_through():
    calibration = _trials([0.7, 0.8, 0.9, 0.95], [0.1, 0.2, 0.3, 0.4])
    shifted = _trials([0.97, 0.98, 0.99, 0.995], [0.75, 0.8, 0.85, 0.9])  # separable, but all high
    found = carried(calibration, shifted)
    assert found["eer_skilled"] == 0.0
    assert found["far_skilled"] == 1.0 and found["frr"] == 0.0
    assert found["hter"] == pytest.approx(0.5)


def test_trials_without_forgeries_are_refused():
    with pytest.raises(ValueError, match="both sides"):
        carried(_trials([0.9, 0.8], []), _trials([0.9, 0.8], [0.1, 0.2]))


def test_own_genuine_sets_the_threshold_on_one_half_and_measures_on_the_other():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(20), np.zeros(20)]
    trials = {f"w{i}": (labels, np.r_[rng.normal(0.8, 0.05, 20), rng.normal(0.5, 0.05, 20)])
              for i in range(10)}
    found = own_genuine(trials, 0.05)
    assert found["target_frr"] == 0.05
    assert found["frr"] <= 0.15  # a held-out half, so near the target, not exactly at it
    assert found["far_skilled"] == 0.0  # forgeries far below any genuine score
    lax = own_genuine(trials, 0.5)
    assert lax["frr"] > found["frr"]
