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
    rule = ScoreNormalisation(0.5, 2.5, top=3)
    assert ScoreNormalisation.from_card({"score_normalisation": rule.to_dict()}) == rule
    assert ScoreNormalisation.from_card({}) == NO_NORMALISATION


def test_a_card_from_before_top_averages_all_references():
    old = ScoreNormalisation.from_card({"score_normalisation": {"strength": 0.5, "centre": 2.5}})
    assert old == ScoreNormalisation(0.5, 2.5, top=0)
    assert aggregate_scores([0.9, 0.5, 0.1], None, old) == pytest.approx(0.5)


def _sigmoid(value: float) -> float:
    return float(1.0 / (1.0 + np.exp(-value)))


def test_top_averages_the_logits_of_the_best_matching_references():
    scores = [0.2, 0.99, 0.6, 0.9, 0.7]
    best = _sigmoid(float(logit(np.array([0.7, 0.9, 0.99])).mean()))
    assert aggregate_scores(scores, None, ScoreNormalisation(top=3)) == pytest.approx(best)
    assert aggregate_scores(scores, None, ScoreNormalisation(top=1)) == pytest.approx(0.99)
    # one poor match among five no longer drags a genuine query down; a single lucky one is not enough
    assert aggregate_scores(scores, None, ScoreNormalisation(top=3)) > aggregate_scores(scores)
    lucky = [0.05, 0.05, 0.99, 0.05, 0.05]
    assert aggregate_scores(lucky, None, ScoreNormalisation(top=3)) < 0.5


@pytest.mark.parametrize("top", [0, 3, 5, 9])
def test_top_at_or_above_the_reference_count_averages_them_all(top):
    scores = [0.2, 0.9, 0.6]
    every = aggregate_scores(scores)
    assert aggregate_scores(scores, None, ScoreNormalisation(top=top)) == pytest.approx(every)


def test_top_then_normalises_by_the_reference_agreement():
    rule = ScoreNormalisation(strength=0.5, centre=0.0, top=2)
    expected = _sigmoid(float(logit(np.array([0.8, 0.9])).mean()) - 0.5 * float(logit(np.array(0.95))))
    assert aggregate_scores([0.1, 0.8, 0.9], _matrix(0.95), rule) == pytest.approx(expected)


def test_a_negative_top_is_refused():
    with pytest.raises(ValueError, match="top must be 0"):
        ScoreNormalisation(top=-1)
