"""Fitting the L1 head on training-writer pairs, and saving a model with a new head."""

from __future__ import annotations

import numpy as np
import pytest

from siamese.head_fit import HeadFitConfig, fit_head, fit_logistic_head, sample_pairs
from siamese.model import SignatureModel
from siamese.scoring import ScoreNormalisation


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _writers(count: int, seed: int = 0):
    """Embeddings: each writer a centre; genuine near it, skilled forgeries a bit further away."""
    rng = np.random.default_rng(seed)
    rows, genuine, forged = [], {}, {}
    for writer in range(count):
        centre = rng.normal(size=256)
        name = f"w/{writer}"
        genuine[name] = list(range(len(rows), len(rows) + 6))
        rows += [centre + rng.normal(scale=0.3, size=256) for _ in range(6)]
        forged[name] = list(range(len(rows), len(rows) + 4))
        rows += [centre + rng.normal(scale=0.9, size=256) for _ in range(4)]
    return _unit(np.array(rows)), genuine, forged


def test_pairs_are_drawn_from_the_given_writers_only():
    embeddings, genuine, forged = _writers(6)
    config = HeadFitConfig(genuine_pairs=5, skilled_pairs=3, random_pairs=2)
    features, labels, counts = sample_pairs(embeddings, genuine, forged, ["w/0", "w/1"], config)
    assert counts == {"genuine": 10, "skilled": 6, "random": 4}
    assert features.shape == (20, 256) and labels.sum() == 10
    with pytest.raises(ValueError, match="at least two writers"):
        sample_pairs(embeddings, genuine, forged, ["w/0"], config)


def test_logistic_head_scores_genuine_pairs_above_forgeries():
    embeddings, genuine, forged = _writers(12)
    config = HeadFitConfig()
    features, labels, _ = sample_pairs(embeddings, genuine, forged, sorted(genuine)[:8], config)
    kernel, bias = fit_logistic_head(features, labels, config.regularisation)
    held_out, held_labels, _ = sample_pairs(embeddings, genuine, forged, sorted(genuine)[8:], config)
    logits = held_out @ kernel + bias
    assert (logits[held_labels == 1].mean() > 0 > logits[held_labels == 0].mean())
    assert ((logits > 0) == held_labels.astype(bool)).mean() > 0.9


def test_fit_head_updates_the_model_and_survives_save_and_load(tmp_path):
    model = SignatureModel.untrained(seed=1)
    embeddings, genuine, forged = _writers(8)
    section = fit_head(model, embeddings, genuine, forged, sorted(genuine), HeadFitConfig())
    assert section["training_accuracy"] > 0.9
    assert model.normalisation == ScoreNormalisation(**section["score_normalisation"])
    assert model.normalisation.strength == 0.5
    first, second = embeddings[genuine["w/0"][:1]], embeddings[genuine["w/0"][1:2]]
    forgery = embeddings[forged["w/0"][:1]]
    assert model.score(first, second)[0] > model.score(first, forgery)[0]
    version = model.save(tmp_path / "refit.keras")
    loaded = SignatureModel.load(tmp_path / "refit.keras")
    assert loaded.version == version
    np.testing.assert_allclose(loaded.score(first, forgery), model.score(first, forgery), rtol=1e-5)
