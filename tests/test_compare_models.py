"""bench.compare_models: the pooled EER that the paired bootstrap resamples writers for."""

from __future__ import annotations

import numpy as np
import pytest

from bench.compare_models import pooled_eer


def test_pooled_eer_pools_the_chosen_writers_and_counts_repeats():
    trials = {
        "clean": (np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.1, 0.2])),
        "mixed": (np.array([1, 0]), np.array([0.3, 0.7])),  # its forgery outscores its genuine
    }
    assert pooled_eer(trials, ["clean"]) == 0.0
    assert pooled_eer(trials, ["mixed"]) == pytest.approx(1.0)
    one = pooled_eer(trials, ["clean", "mixed"])
    assert 0.0 < one < pooled_eer(trials, ["clean", "mixed", "mixed"])
