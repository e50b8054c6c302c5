"""A fast, deterministic stand-in for SignatureModel (numpy only) and a CLI runner that uses it.

The fake embeds the real preprocessed canvas (``siamese.preprocess``) by pooling it and projecting
it with a fixed random matrix, and scores pairs through an L1-distance sigmoid like the real head,
so similar images score high. Subprocess tests run ``python -m tests.fake_model ARGS...``: the real
``sigverify`` command line, with only ``SignatureModel.load`` replaced (no TensorFlow start-up).
``SIGVERIFY_FAKE_EMBED_SECONDS`` slows each embedding batch down so a kill lands mid-import.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from siamese.model import file_sha256
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH, preprocess
from siamese.scoring import NO_NORMALISATION

EMBEDDING_DIM = 256
POOL = 10  # the canvas is pooled to (CANVAS_HEIGHT // POOL) x (CANVAS_WIDTH // POOL) cells
CELLS = (CANVAS_HEIGHT // POOL, CANVAS_WIDTH // POOL)


class FakeSignatureModel:
    """Same interface as SignatureModel: embed, embed_preprocessed, score, score_matrix, version."""

    def __init__(self, version: str = "fake", threshold: float = 0.5, delay: float = 0.0) -> None:
        rng = np.random.default_rng(1234)
        self._projection = rng.normal(size=(CELLS[0] * CELLS[1], EMBEDDING_DIM)).astype(np.float32)
        self.version = version
        self.runtime = "fake"
        self.threshold = threshold
        self.normalisation = NO_NORMALISATION
        self.embedding_dim = EMBEDDING_DIM
        self.delay = delay

    def embed(self, images: Sequence[object], max_pixels: int = 40_000_000) -> np.ndarray:
        """Preprocess (for real) and embed."""
        batch = [preprocess(image, max_pixels=max_pixels) for image in images]  # type: ignore[arg-type]
        if not batch:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return self.embed_preprocessed(np.stack(batch))

    def embed_preprocessed(self, batch: np.ndarray) -> np.ndarray:
        """Pool each canvas to CELLS, project to 256-d, normalise."""
        if self.delay:
            time.sleep(self.delay)
        canvases = np.asarray(batch, dtype=np.float32).reshape(len(batch), CANVAS_HEIGHT, CANVAS_WIDTH)
        cells = canvases[:, : CELLS[0] * POOL, : CELLS[1] * POOL]
        cells = cells.reshape(len(batch), CELLS[0], POOL, CELLS[1], POOL)
        pooled = cells.mean(axis=(2, 4)).reshape(len(batch), -1)
        pooled = pooled - pooled.mean(axis=1, keepdims=True)
        vectors = pooled @ self._projection
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-9)).astype(np.float32)

    def score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Rowwise similarity: a sigmoid of the L1 distance."""
        distance = np.abs(np.atleast_2d(a) - np.atleast_2d(b)).sum(axis=1)
        return _similarity(distance)

    def score_matrix(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """All pairs."""
        distance = np.abs(np.atleast_2d(a)[:, None, :] - np.atleast_2d(b)[None, :, :]).sum(axis=2)
        return _similarity(distance)


def _similarity(distance: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp((distance - 14.4) / 1.2))).astype(np.float32)


def fake_loader(delay: float = 0.0):  # type: ignore[no-untyped-def]
    """A replacement for ``SignatureModel.load``: a fake whose version is the file's sha256."""

    def load(path: str | Path | None = None, runtime: str = "litert") -> FakeSignatureModel:
        version = file_sha256(Path(path)) if path is not None else "fake"
        return FakeSignatureModel(version, delay=delay)

    return load


def main(argv: list[str]) -> None:
    """Run the real ``sigverify`` command line with the fake model."""
    from siamese.model import SignatureModel
    from webapp.cli import main as sigverify

    delay = float(os.environ.get("SIGVERIFY_FAKE_EMBED_SECONDS", "0"))
    SignatureModel.load = staticmethod(fake_loader(delay))  # type: ignore[method-assign,assignment]
    sigverify.main(args=argv, prog_name="sigverify")


if __name__ == "__main__":
    main(sys.argv[1:])
