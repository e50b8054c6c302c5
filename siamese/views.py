"""Test-time views: each canvas embedded as it is and redrawn a little smaller and larger, averaged.

A model card's ``test_time_zooms`` (e.g. ``[0.9, 1.1]``) makes every embedding of that model (enrolment,
verification, identification, ``evaluate``, ``calibrate``, ``fit-head``) the mean of the vectors of the
canvas and of the canvas drawn that many times as large about its centre, made unit length again.
References and queries are thus always embedded alike; the model version names the zooms as well as
the weights, so stored embeddings of another embedding rule are found stale (``sigverify reindex``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from siamese.errors import ModelError

ZOOM_RANGE = (0.5, 2.0)


def zoomed(batch: np.ndarray, zoom: float) -> np.ndarray:
    """Every canvas of ``batch`` ``(n, H, W, 1)`` drawn ``zoom`` times as large about its centre
    (bilinear; ink pushed past the edges is cut, new room is background)."""
    from scipy import ndimage

    height, width = batch.shape[1:3]
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    offset = centre - centre / zoom
    out = np.empty_like(batch, dtype=np.float32)
    for index, canvas in enumerate(batch):
        ndimage.affine_transform(canvas[..., 0], np.full(2, 1 / zoom), offset=offset, order=1,
                                 mode="constant", cval=0.0, output=out[index, ..., 0])
    return out


def average_views(embed: Callable[[np.ndarray], np.ndarray], batch: np.ndarray,
                  zooms: Sequence[float]) -> np.ndarray:
    """The unit-length mean of ``embed`` over ``batch`` and each of its ``zooms``, in one call of
    ``embed`` (views stacked along the batch axis)."""
    views = np.concatenate([batch, *(zoomed(batch, zoom) for zoom in zooms)])
    vectors = embed(views).reshape(len(zooms) + 1, len(batch), -1).sum(axis=0)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def zooms_from_card(card: dict[str, Any]) -> tuple[float, ...]:
    """The card's ``test_time_zooms`` (none when absent).

    Raises:
        ModelError: not a list of distinct numbers in ``ZOOM_RANGE`` other than 1.
    """
    return checked_zooms(card.get("test_time_zooms") or ())


def checked_zooms(values: Any) -> tuple[float, ...]:
    """``values`` as a tuple of zooms, or ModelError (see ``zooms_from_card``)."""
    low, high = ZOOM_RANGE
    if not isinstance(values, (list, tuple)) or not all(
            isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        raise ModelError(f"test_time_zooms must be a list of numbers, not {values!r}")
    zooms = tuple(float(value) for value in values)
    if any(not low <= zoom <= high or zoom == 1.0 for zoom in zooms) or len(set(zooms)) != len(zooms):
        raise ModelError(f"test_time_zooms must be distinct numbers from {low} to {high} other than 1 "
                         f"(the canvas itself is always a view), not {list(zooms)}")
    return zooms


def model_version(weights_sha256: str, zooms: Sequence[float]) -> str:
    """The version stamped on embeddings: the weights file's sha256 alone, or with views a sha256 of
    it and the zooms (another embedding rule, so another version)."""
    if not zooms:
        return weights_sha256
    rule = weights_sha256 + " test_time_zooms " + ",".join(repr(float(zoom)) for zoom in zooms)
    return hashlib.sha256(rule.encode()).hexdigest()
