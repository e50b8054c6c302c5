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
    """Every canvas of ``batch`` ``(n, H, W, 1)`` drawn ``zoom`` times as large about its centre.

    Bilinear, separable along the two axes; a pixel whose source lies outside the canvas is
    background, so ink pushed past the edges is cut. The same pixels (to float rounding) as
    ``scipy.ndimage.affine_transform`` with ``order=1`` and ``mode="constant"``, about 4 times sooner.
    """
    batch = np.asarray(batch, dtype=np.float32)
    rows_low, rows_high, rows_w_low, rows_w_high = _axis_weights(batch.shape[1], zoom)
    cols_low, cols_high, cols_w_low, cols_w_high = _axis_weights(batch.shape[2], zoom)
    rows = (batch[:, rows_low] * rows_w_low[None, :, None, None]
            + batch[:, rows_high] * rows_w_high[None, :, None, None])
    return (rows[:, :, cols_low] * cols_w_low[None, None, :, None]
            + rows[:, :, cols_high] * cols_w_high[None, None, :, None])


def _axis_weights(size: int, zoom: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each output position along an axis of ``size``: the two source pixels and their weights."""
    centre = (size - 1) / 2
    source = (np.arange(size) - centre) / zoom + centre
    inside = (source >= 0) & (source <= size - 1)
    floor = np.floor(source)
    low = np.clip(floor.astype(np.intp), 0, size - 1)
    high = np.clip(low + 1, 0, size - 1)
    fraction = source - floor
    return (low, high, np.where(inside, 1 - fraction, 0).astype(np.float32),
            np.where(inside, fraction, 0).astype(np.float32))


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
    zooms = card.get("test_time_zooms")
    return () if zooms is None else checked_zooms(zooms)


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
