"""The cache of preprocessed dataset canvases (``siamese.canvas_cache``)."""

from __future__ import annotations

import numpy as np

import siamese.canvas_cache
import siamese.preprocess
from siamese.canvas_cache import load_canvases
from tests.synthetic import synthetic_signature


def test_canvases_are_cached_per_image_and_per_canvas_size(tmp_path, monkeypatch) -> None:
    paths = []
    for sample in range(2):
        paths.append(tmp_path / f"s{sample}.png")
        synthetic_signature(3, sample).save(paths[-1])
    (tmp_path / "broken.png").write_bytes(paths[0].read_bytes()[:40])  # undecodable: not usable
    paths.append(tmp_path / "broken.png")
    cache = tmp_path / "cache"
    canvases, usable = load_canvases(paths, cache, workers=1, progress=False)
    assert canvases.shape == (3, siamese.preprocess.CANVAS_HEIGHT, siamese.preprocess.CANVAS_WIDTH)
    assert usable.tolist() == [True, True, False] and not canvases[2].any()
    entries = sorted(cache.rglob("*.npy"))
    assert len(entries) == 3
    again, _ = load_canvases(paths, cache, workers=1, progress=False)
    assert np.array_equal(again, canvases) and sorted(cache.rglob("*.npy")) == entries  # read back
    for module in (siamese.preprocess, siamese.canvas_cache):  # a sigverify with another canvas
        monkeypatch.setattr(module, "CANVAS_HEIGHT", 150)
        monkeypatch.setattr(module, "CANVAS_WIDTH", 220)
    tall, usable = load_canvases(paths, cache, workers=1, progress=False)
    assert tall.shape == (3, 150, 220) and usable.tolist() == [True, True, False]
    assert len(list(cache.rglob("*.npy"))) == 6  # its own entries, the others' untouched
