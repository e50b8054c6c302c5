"""Signature image preprocessing: an image file, PIL image or array in, a fixed canvas with ink high out.

Steps: decode (PNG, JPEG, TIFF, BMP, GIF or WebP in any mode; the first frame or page; EXIF
orientation; transparency on white; hostile files refused with an ImageError), grayscale, ink polarity
(dark ink on light paper; inverted scans are flipped), background removal with Otsu's threshold on a
lightly smoothed copy, removal of isolated specks, crop to the ink, fit into a fixed canvas keeping the
aspect ratio, ink as high values in [0, 1]. The same input always gives the same output.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from siamese.errors import (
    ImageTooLargeError,
    ImageTooSmallError,
    NoInkError,
    UndecodableImageError,
)

CANVAS_HEIGHT = 150
CANVAS_WIDTH = 220
CANVAS_MARGIN = 4
MIN_IMAGE_SIDE = 16
MIN_INK_PIXELS = 30
MIN_INK_EXTENT = 10
MIN_INK_CONTRAST = 20
DEFAULT_MAX_PIXELS = 40_000_000
MAX_JPEG_SCANS = 100
# Raster formats of scanners, cameras and the training datasets. Pillow's other readers (EPS runs
# Ghostscript, PSD, ICO, ...) are never tried on uploads.
ACCEPTED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP")  # JPEG includes MPO
SUPPORTED_FORMATS_TEXT = "PNG, JPEG, TIFF, BMP, GIF or WebP"
# Pillow refuses PNG text and ICC chunks that decompress past these limits (metadata zip bombs).
PNG_TEXT_LIMITS = ("MAX_TEXT_CHUNK", "MAX_TEXT_MEMORY")
# What Pillow's parsers raise on malformed files, besides ValueError: truncated or inconsistent
# headers surface as any of these from its pure-Python plugins.
MALFORMED_FILE_ERRORS = (OSError, SyntaxError, EOFError, TypeError, KeyError, IndexError,
                         struct.error, ZeroDivisionError, OverflowError)

ImageSource = str | Path | bytes | bytearray | memoryview | Image.Image | np.ndarray


def open_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``source`` into an 8-bit grayscale PIL image with EXIF orientation applied.

    Files (bytes or paths) must be in one of ``ACCEPTED_FORMATS``; a PIL image or an array is taken
    as it is.

    Raises:
        UndecodableImageError: empty, unreadable, malformed, or not in an accepted format.
        ImageTooLargeError: more than ``max_pixels`` pixels (checked before decoding), oversized
            metadata, or a JPEG with more than ``MAX_JPEG_SCANS`` scans.
    """
    if isinstance(source, np.ndarray):
        return _array_to_gray(source)
    if isinstance(source, Image.Image):
        with _decoding_errors(source):
            return _decode(source, max_pixels, first_frame=False)
    with _decoding_errors(source):
        data = _file_bytes(source)
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
            _check_jpeg_scans(image, data)
            return _decode(image, max_pixels, first_frame=True)


def _file_bytes(source: str | Path | bytes | bytearray | memoryview) -> bytes:
    """The bytes of an in-memory file or of the file at a path (refusing an empty one)."""
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    if not data:
        raise UndecodableImageError("the file is empty")
    return data


def _check_jpeg_scans(image: Image.Image, data: bytes) -> None:
    """Refuse a JPEG with more scans than a real one has: each scan costs a pass over every pixel.

    Counting the start-of-scan marker bytes is exact in the compressed data (where 0xFF is always
    escaped) and at worst over-counts inside metadata, which never comes close to the limit.
    """
    if image.format not in ("JPEG", "MPO"):
        return
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise ImageTooLargeError(
            f"the JPEG has {scans} scans; at most {MAX_JPEG_SCANS} are accepted"
        )


def _decode(image: Image.Image, max_pixels: int, first_frame: bool) -> Image.Image:
    """Check the size, then load the pixels (frame 0 of a file), apply EXIF orientation, go gray."""
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image has {width}x{height} pixels; at most {max_pixels} are accepted"
        )
    if first_frame:
        image.seek(0)
    image.load()
    oriented = ImageOps.exif_transpose(image) or image
    return _to_gray(oriented)


@contextmanager
def _decoding_errors(source: ImageSource) -> Iterator[None]:
    """Turn Pillow's decoding failures and decompression-bomb warnings into our ImageError classes."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # Corrupt metadata (EXIF, TIFF tags) only costs those tags; Pillow warns and decodes the
        # pixels, or fails on them below. Ignored so the outcome never depends on warning filters.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageTooLargeError(f"the image is too large to decode: {error}") from None
        except FileNotFoundError:
            raise UndecodableImageError(f"no such file: {source!s}") from None
        except UnidentifiedImageError:
            raise UndecodableImageError(
                f"the file is not an image in a supported format ({SUPPORTED_FORMATS_TEXT})"
            ) from None
        except ValueError as error:
            if any(limit in str(error) for limit in PNG_TEXT_LIMITS):
                raise ImageTooLargeError(
                    "the image's metadata (PNG text or colour profile chunks) is too large to decode"
                ) from None
            raise UndecodableImageError(f"cannot decode the image: {error}") from None
        except MALFORMED_FILE_ERRORS as error:
            raise UndecodableImageError(f"cannot decode the image: {error}") from None


def _to_gray(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit grayscale, compositing transparency onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _array_to_gray(np.asarray(image))
    if image.mode == "La":
        image = image.convert("LA")  # Pillow converts premultiplied La only to LA
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    if image.mode == "CMYK":
        image = image.convert("RGB")
    if image.mode == "LAB":
        return image.getchannel("L")  # Pillow cannot convert LAB to L; L* is the lightness
    return image.convert("L")


def _array_to_gray(array: np.ndarray) -> Image.Image:
    """Turn a 2-D (or H x W x 1/3/4) numeric array into 8-bit grayscale."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":  # bool, int, uint, float
        raise UndecodableImageError(f"an image array must hold real numbers, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        if array.shape[2] == 1:
            array = array[:, :, 0]
        else:
            mode = "RGB" if array.shape[2] == 3 else "RGBA"
            return _to_gray(Image.fromarray(_to_uint8(array), mode=mode))
    if array.ndim != 2 or array.size == 0:
        raise UndecodableImageError(f"an image array must be H x W (x C), got shape {array.shape}")
    return Image.fromarray(_to_uint8(array), mode="L")


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale an integer or float array to uint8 by its type's range."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return np.where(array, 255, 0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        values = np.nan_to_num(array.astype(np.float64))
        if values.max(initial=0.0) <= 1.0:
            values = values * 255.0
        return np.clip(values, 0, 255).astype(np.uint8)
    top = 65535.0 if array.max(initial=0) > 255 else 255.0
    return np.clip(array.astype(np.float64) * (255.0 / top), 0, 255).astype(np.uint8)


def otsu_threshold(gray: np.ndarray) -> int:
    """Otsu's threshold of a uint8 array: the level that best separates two intensity classes."""
    histogram = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight_low = np.cumsum(histogram)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(histogram * levels)
    mean_low = sum_low / np.maximum(weight_low, 1e-12)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1e-12)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return int(np.argmax(between))


def ink_mask(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Boolean mask of the ink in a dark-ink-on-light-paper uint8 image, and the paper's grey level.

    The threshold comes from a lightly smoothed copy (robust to scanner noise), but a pixel is ink
    only if it is also darker than the threshold itself, so the mask does not spread past the stroke.

    Raises:
        NoInkError: the image has no ink clearly darker than its background.
    """
    smoothed = ndimage.gaussian_filter(gray.astype(np.float32), sigma=1.0)
    smoothed_u8 = np.clip(smoothed + 0.5, 0, 255).astype(np.uint8)
    threshold = otsu_threshold(smoothed_u8)
    mask = smoothed_u8 <= threshold
    if not mask.any() or mask.all():
        raise NoInkError("the image holds no ink (it is uniform)")
    contrast = float(np.median(smoothed_u8[~mask]) - np.median(smoothed_u8[mask]))
    if contrast < MIN_INK_CONTRAST:
        raise NoInkError("the image holds no ink clearly darker than the paper")
    paper = float(np.median(gray[~mask]))
    return _drop_specks(mask & (gray <= threshold)), paper


def _drop_specks(mask: np.ndarray) -> np.ndarray:
    """Remove connected ink components too small to be pen strokes (scanner dust)."""
    longest = max(mask.shape)
    min_area = max(2, int(round(6 * (longest / 500.0) ** 2)))
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return mask
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area
    keep[0] = False
    return keep[labels]


def preprocess(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Preprocess one signature image into a ``(CANVAS_HEIGHT, CANVAS_WIDTH, 1)`` float32 array.

    Ink is high (up to 1.0), the background is exactly 0.

    Raises:
        UndecodableImageError, ImageTooLargeError: the input is not a usable image file.
        ImageTooSmallError: the image or its ink is too small to hold a signature.
        NoInkError: a blank page or a picture without ink.
    """
    gray = np.asarray(open_image(source, max_pixels=max_pixels), dtype=np.uint8)
    if min(gray.shape) < MIN_IMAGE_SIDE:
        raise ImageTooSmallError(
            f"the image is {gray.shape[1]}x{gray.shape[0]} pixels; a signature needs at least "
            f"{MIN_IMAGE_SIDE} on each side"
        )
    if np.median(gray) < 128:
        gray = 255 - gray  # light ink on dark paper: flip to dark on light
    mask, paper = ink_mask(gray)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or int(mask.sum()) < MIN_INK_PIXELS:
        raise NoInkError("the image holds too little ink to be a signature")
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if max(bottom - top, right - left) < MIN_INK_EXTENT:
        raise ImageTooSmallError("the ink covers too small an area to be a signature")
    strength = np.clip(paper - gray.astype(np.float32), 0.0, 255.0)
    ink = np.where(mask, strength, 0.0)[top:bottom, left:right].astype(np.float32)
    return _fit_to_canvas(ink)


def _fit_to_canvas(ink: np.ndarray) -> np.ndarray:
    """Scale the cropped ink (0..255, ink high) into the canvas, centred, aspect kept, in [0, 1]."""
    height, width = ink.shape
    inner_h, inner_w = CANVAS_HEIGHT - 2 * CANVAS_MARGIN, CANVAS_WIDTH - 2 * CANVAS_MARGIN
    scale = min(inner_h / height, inner_w / width)
    new_h = max(1, min(inner_h, int(round(height * scale))))
    new_w = max(1, min(inner_w, int(round(width * scale))))
    resized = Image.fromarray(ink, mode="F").resize((new_w, new_h), Image.Resampling.BILINEAR)
    canvas = np.zeros((CANVAS_HEIGHT, CANVAS_WIDTH), dtype=np.float32)
    top = (CANVAS_HEIGHT - new_h) // 2
    left = (CANVAS_WIDTH - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = np.asarray(resized, dtype=np.float32)
    strong = canvas[canvas > 0]
    level = float(np.percentile(strong, 95)) if strong.size else 1.0
    canvas = np.clip(canvas / max(level, 1e-6), 0.0, 1.0)
    return canvas[:, :, None]


def preprocess_many(
    sources: list[ImageSource], max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Preprocess a list of images into one ``(n, H, W, 1)`` float32 batch."""
    if not sources:
        return np.zeros((0, CANVAS_HEIGHT, CANVAS_WIDTH, 1), dtype=np.float32)
    return np.stack([preprocess(source, max_pixels=max_pixels) for source in sources])
