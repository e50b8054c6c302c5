"""The committed model: loads offline with safe_mode, and separates real CEDAR signatures."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from siamese.model import SHIPPED_MODEL, SignatureModel, card_path_for, file_sha256

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="module")
def shipped() -> SignatureModel:
    """The shipped model, loaded once."""
    return SignatureModel.load()


def test_shipped_file_loads_with_safe_mode_and_no_custom_objects():
    model = keras.models.load_model(SHIPPED_MODEL, safe_mode=True, compile=False)
    assert model.get_layer("twin").output.shape[-1] == 256


def test_shipped_card_describes_the_model(shipped):
    card = json.loads(card_path_for(SHIPPED_MODEL).read_text())
    assert shipped.version == file_sha256(SHIPPED_MODEL)
    assert 0.0 < shipped.threshold < 1.0
    assert card["threshold"] == pytest.approx(shipped.threshold)
    for key in ("command", "split", "hyperparameters", "training_seconds", "parameters", "test", "head_fit"):
        assert key in card
    assert card["threshold_source"] == "calibrated"
    assert shipped.normalisation.strength == card["score_normalisation"]["strength"] > 0


@pytest.mark.datasets
@pytest.mark.skipif(not (DATASETS / "cedar").is_dir(), reason="../shared/datasets/cedar is not present")
def test_shipped_model_separates_cedar_test_writers(shipped):
    card = json.loads(card_path_for(SHIPPED_MODEL).read_text())
    writers = sorted(w.split("/", 1)[1] for w in card["split"]["test"] if w.startswith("cedar/"))[:4]
    assert writers, "the card has no CEDAR test writer"
    genuine_scores, forged_scores = [], []
    for writer in writers:
        number = writer.rsplit("_", 1)[-1]
        genuine = sorted((DATASETS / "cedar" / "full_org").glob(f"original_{number}_*.png"))[:10]
        forged = sorted((DATASETS / "cedar" / "full_forg").glob(f"forgeries_{number}_*.png"))[:5]
        refs = shipped.embed(genuine[:5])
        reference_matrix = shipped.score_matrix(refs, refs)
        for vectors, bucket in ((shipped.embed(genuine[5:]), genuine_scores),
                                (shipped.embed(forged), forged_scores)):
            for row in shipped.score_matrix(vectors, refs):
                bucket.append(shipped.aggregate(row, reference_matrix))
    genuine_scores, forged_scores = np.array(genuine_scores), np.array(forged_scores)
    pairwise_wins = (genuine_scores[:, None] > forged_scores[None, :]).mean()
    assert pairwise_wins > 0.8, f"AUC on CEDAR test writers only {pairwise_wins:.3f}"
