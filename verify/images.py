"""Pictures for people: preprocessed canvases as dark ink on white, and two-colour overlays.

The preprocessing aligns both signatures the way the model sees them (cropped to the ink, scaled
and centred on the same canvas), so an overlay of two canvases shows where the strokes differ.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from siamese.preprocess import preprocess
from store.database import Store
from store.references import reference_image

REFERENCE_COLOUR = (31, 102, 204)  # blue
QUERY_COLOUR = (217, 72, 15)  # orange


@dataclass(frozen=True)
class PairImages:
    """Two canvases as PNG (dark ink on white) and their overlay (first blue, second orange)."""

    first_png: bytes
    second_png: bytes
    overlay_png: bytes


def ink_of_png(png: bytes) -> np.ndarray:
    """A stored canvas PNG (ink high) as ink intensities in [0, 1]."""
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def ink_of_upload(data: bytes, max_pixels: int) -> np.ndarray:
    """An uploaded image preprocessed like the model sees it, as ink intensities in [0, 1].

    Raises:
        ImageError: the image cannot be used.
    """
    return np.asarray(preprocess(data, max_pixels=max_pixels), dtype=np.float32)[:, :, 0]


def ink_to_png(ink: np.ndarray) -> bytes:
    """Ink intensities as a PNG of dark ink on white paper."""
    pixels = np.round(255.0 * (1.0 - np.clip(ink, 0.0, 1.0))).astype(np.uint8)
    return _png(Image.fromarray(pixels))


def overlay_to_png(first: np.ndarray, second: np.ndarray) -> bytes:
    """Both canvases on white: ``first`` in blue, ``second`` in orange, overlapping ink dark."""
    paper = np.full(first.shape + (3,), 255.0, dtype=np.float32)
    for ink, colour in ((first, REFERENCE_COLOUR), (second, QUERY_COLOUR)):
        paper -= np.clip(ink, 0.0, 1.0)[..., None] * (255.0 - np.asarray(colour, dtype=np.float32))
    return _png(Image.fromarray(np.clip(np.round(paper), 0, 255).astype(np.uint8)))


def display_upload_png(data: bytes, max_pixels: int) -> bytes:
    """An upload as the model sees it, dark ink on white.

    Raises:
        ImageError: the image cannot be used.
    """
    return ink_to_png(ink_of_upload(data, max_pixels))


def display_reference_png(store: Store, customer_id: str, reference_id: int) -> bytes:
    """A stored reference as dark ink on white (for thumbnails).

    Raises:
        InvalidCustomerIdError, CustomerNotFoundError, ReferenceNotFoundError.
    """
    return ink_to_png(ink_of_png(reference_image(store, customer_id, reference_id)))


def verification_images(store: Store, customer_id: str, reference_id: int, query: bytes) -> PairImages:
    """The best-matching reference, the query, and their overlay (reference blue, query orange).

    Raises:
        ReferenceNotFoundError, ImageError.
    """
    reference = ink_of_png(reference_image(store, customer_id, reference_id))
    ink = ink_of_upload(query, store.settings.max_image_pixels)
    return PairImages(ink_to_png(reference), ink_to_png(ink), overlay_to_png(reference, ink))


def comparison_images(first: bytes, second: bytes, max_pixels: int) -> PairImages:
    """Two uploads as the model sees them and their overlay (first blue, second orange)."""
    a, b = ink_of_upload(first, max_pixels), ink_of_upload(second, max_pixels)
    return PairImages(ink_to_png(a), ink_to_png(b), overlay_to_png(a, b))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
