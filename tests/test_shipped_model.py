"""The committed model: loads offline with safe_mode, and separates real CEDAR signatures."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from siamese.model import SHIPPED_MODEL, SignatureModel, card_path_for, version_of

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="module")
def shipped() -> SignatureModel:
    """The shipped model, loaded once."""
    return SignatureModel.load()


def test_shipped_file_loads_with_safe_mode_and_no_custom_objects():
    import siamese.layers  # noqa: F401  (importing the module registers the custom layers)

    model = keras.models.load_model(SHIPPED_MODEL, safe_mode=True, compile=False)
    assert model.get_layer("twin").output.shape[-1] == 256


def test_shipped_card_describes_the_model(shipped):
    card = json.loads(card_path_for(SHIPPED_MODEL).read_text())
    assert shipped.version == version_of(SHIPPED_MODEL)
    assert shipped.zooms == tuple(card.get("test_time_zooms") or ())
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


def _cedar_test_writer_files(count: int) -> list[tuple[list[Path], list[Path]]]:
    """(genuine files, forgery files) of the first ``count`` CEDAR test writers of the card."""
    card = json.loads(card_path_for(SHIPPED_MODEL).read_text())
    numbers = sorted(w.split("/", 1)[1] for w in card["split"]["test"] if w.startswith("cedar/"))[:count]
    root = DATASETS / "cedar"
    return [(sorted((root / "full_org").glob(f"original_{n}_*.png"))[:10],
             sorted((root / "full_forg").glob(f"forgeries_{n}_*.png"))[:5]) for n in numbers]


@pytest.mark.datasets
@pytest.mark.skipif(not (DATASETS / "cedar").is_dir(), reason="../shared/datasets/cedar is not present")
def test_cedar_decisions_do_not_hinge_on_the_scan_background(shipped):
    """CEDAR genuine scans have a grey, noisy background and its forgeries a clean white one.

    Swap them (white-wash the genuine queries' paper, give the forgeries a grey noisy paper): the
    scores against the references must barely move, or the model would be reading the background.
    """
    rng = np.random.default_rng(0)

    def whitewash(path: Path) -> np.ndarray:
        pixels = np.asarray(Image.open(path).convert("L")).copy()
        pixels[pixels > 200] = 255
        return pixels

    def grey_paper(path: Path) -> np.ndarray:
        pixels = np.asarray(Image.open(path).convert("L")).astype(np.float64)
        paper = rng.normal(238, 8, pixels.shape)
        return np.clip(np.minimum(pixels, paper), 0, 255).astype(np.uint8)

    shifts, flips, total = [], 0, 0
    for genuine, forged in _cedar_test_writer_files(4):
        refs = shipped.embed(genuine[:5])
        matrix = shipped.score_matrix(refs, refs)
        for files, change in ((genuine[5:], whitewash), (forged, grey_paper)):
            before = [shipped.aggregate(row, matrix)
                      for row in shipped.score_matrix(shipped.embed(files), refs)]
            changed = shipped.embed([change(path) for path in files])
            after = [shipped.aggregate(row, matrix) for row in shipped.score_matrix(changed, refs)]
            shifts += [abs(a - b) for a, b in zip(after, before)]
            flips += sum((a >= shipped.threshold) != (b >= shipped.threshold) for a, b in zip(after, before))
            total += len(files)
    assert np.mean(shifts) < 0.05, f"mean score shift {np.mean(shifts):.3f} when the paper is swapped"
    assert flips <= 0.05 * total, f"{flips} of {total} decisions flip when the paper is swapped"
