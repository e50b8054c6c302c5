"""The SigNet tower that `make bench` times against sigverify's twin takes sigverify's canvases."""

from __future__ import annotations

import numpy as np

from bench.embedding_bench import signet_embedder
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH
from tests.synthetic import png_bytes, synthetic_signature


def test_signet_embeds_png_bytes_through_sigverifys_preprocessing() -> None:
    signet, embed = signet_embedder()
    assert tuple(signet.input_shape) == (None, CANVAS_HEIGHT, CANVAS_WIDTH, 1)
    vectors = embed([png_bytes(synthetic_signature(writer, 1)) for writer in (1, 2)])
    assert vectors.shape == (2, 128) and np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1])  # each image's own canvas, not a blank one
