"""The decision rule shared by verification and evaluation: logit mean with reference normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from siamese.scoring import (
    NO_NORMALISATION,
    ScoreNormalisation,
    aggregate_scores,
    logit,
    reference_agreement,
)


def _matrix(off_diagonal: float, k: int = 3) -> np.ndarray:
    matrix = np.full((k, k), off_diagonal)
    np.fill_diagonal(matrix, 1.0)
    return matrix


def test_without_normalisation_the_score_is_the_sigmoid_of_the_mean_logit():
    scores = np.array([0.9, 0.5, 0.1])
    assert aggregate_scores(scores) == pytest.approx(0.5)
    assert aggregate_scores([0.8, 0.8]) == pytest.approx(0.8)
    assert aggregate_scores([0.8, 0.8], _matrix(0.99, 2), NO_NORMALISATION) == pytest.approx(0.8)


def test_consistent_references_raise_the_bar():
    rule = ScoreNormalisation(strength=0.5, centre=float(logit(np.array(0.8))))
    query = [0.8, 0.8, 0.8]
    typical = aggregate_scores(query, _matrix(0.8), rule)
    tight = aggregate_scores(query, _matrix(0.99), rule)
    loose = aggregate_scores(query, _matrix(0.5), rule)
    assert typical == pytest.approx(0.8)
    assert tight < typical < loose
    assert tight > 0.0 and loose < 1.0


def test_a_single_reference_is_not_normalised():
    rule = ScoreNormalisation(strength=1.0, centre=-5.0)
    assert aggregate_scores([0.7], np.array([[1.0]]), rule) == pytest.approx(0.7)
    assert reference_agreement(np.array([[1.0]])) is None


def test_reference_agreement_ignores_the_diagonal():
    assert reference_agreement(_matrix(0.5)) == pytest.approx(0.0)


def test_extreme_scores_stay_finite():
    value = aggregate_scores([1.0, 0.0, 1.0], _matrix(1.0), ScoreNormalisation(0.5, 0.0))
    assert np.isfinite(value) and 0.0 <= value <= 1.0


def test_no_reference_scores_is_an_error():
    with pytest.raises(ValueError, match="no reference scores"):
        aggregate_scores([])


def test_normalisation_round_trips_through_the_card():
    rule = ScoreNormalisation(0.5, 2.5)
    assert ScoreNormalisation.from_card({"score_normalisation": rule.to_dict()}) == rule
    assert ScoreNormalisation.from_card({}) == NO_NORMALISATION
