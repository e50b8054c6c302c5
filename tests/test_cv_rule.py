"""bench.cv_rule: each variant is the service's rule over a subset of the sorted reference scores."""

import numpy as np
import pytest

from bench.cv_rule import SUBSETS, rule
from siamese.scoring import ScoreNormalisation, aggregate_scores, logit

SCORES = np.array([0.9, 0.2, 0.6, 0.99, 0.7])
REFERENCES = np.full((5, 5), 0.95)
NORMALISATION = ScoreNormalisation(strength=0.5, centre=1.0)


def sigmoid(value: float) -> float:
    return float(1.0 / (1.0 + np.exp(-value)))


def test_mean_is_the_service_rule_over_all_references():
    assert rule(SUBSETS["mean"])(SCORES, REFERENCES, NORMALISATION) == pytest.approx(
        aggregate_scores(SCORES, REFERENCES, NORMALISATION))


def test_the_cards_own_top_is_set_aside():
    card_rule = ScoreNormalisation(strength=0.5, centre=1.0, top=3)
    assert rule(SUBSETS["mean"])(SCORES, REFERENCES, card_rule) == pytest.approx(
        aggregate_scores(SCORES, REFERENCES, NORMALISATION))
    assert rule(SUBSETS["top3"])(SCORES, REFERENCES, NORMALISATION) == pytest.approx(
        aggregate_scores(SCORES, REFERENCES, card_rule))


@pytest.mark.parametrize(("name", "kept"), [
    ("median", [0.7]), ("max", [0.99]), ("min", [0.2]), ("top3", [0.7, 0.9, 0.99]),
    ("trimmed", [0.6, 0.7, 0.9])])
def test_each_rule_averages_the_logits_of_its_subset_then_normalises(name, kept):
    shift = NORMALISATION.strength * (float(logit(np.array([0.95]))[0]) - NORMALISATION.centre)
    expected = sigmoid(float(logit(np.array(kept)).mean()) - shift)
    assert rule(SUBSETS[name])(SCORES, REFERENCES, NORMALISATION) == pytest.approx(expected)


def test_a_single_reference_is_kept_by_every_rule():
    for subset in SUBSETS.values():
        assert list(subset(np.array([0.4]))) == [0.4]


def test_as_folds_puts_one_rules_trials_of_every_fold_under_the_epoch_keys_crossval_reads():
    from bench.cv_rule import as_folds

    first, second = {"fold": 1}, {"fold": 2}
    per_fold = [{"mean": {}, "top3": first}, {"mean": {}, "top3": second}]
    assert as_folds(per_fold, "top3") == [{"best": first, "last": first}, {"best": second, "last": second}]
