"""Signature image preprocessing: an image file, PIL image or array in, a fixed canvas with ink high out.

Steps: decode (PNG, JPEG, TIFF, BMP, GIF or WebP in any mode; the first frame or page; EXIF
orientation; transparency on white; hostile files refused with an ImageError), grayscale, ink polarity
(dark ink on light paper; inverted scans are flipped), uneven light evened out (``even_out_light``;
evenly lit scans are untouched), background removal with Otsu's threshold on a lightly smoothed copy,
removal of isolated specks and of printed rules (``drop_printed_rules``), crop to the ink, fit into
a fixed canvas keeping the aspect ratio, ink as high values in [0, 1]. The same input always gives the
same output.

An image longer than ``REDUCE_ABOVE_SIDE`` on a side is reduced before the float work (a box average
by an integer factor; a JPEG is decoded at 1/2, 1/4 or 1/8 scale to start with), and every image is
made gray a tile at a time: preprocessing a 40 Mpx upload peaks at 0.1 to 0.25 GB (the decoded pixels
dominate), not 0.9 GB (``python -m bench.preprocess_memory``). Images up to that side, the training
datasets among them, give the same canvas as before.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from siamese.errors import (
    ImageTooLargeError,
    ImageTooSmallError,
    NoInkError,
    UndecodableImageError,
)

CANVAS_HEIGHT = 120
CANVAS_WIDTH = 280
CANVAS_MARGIN = 4
MIN_IMAGE_SIDE = 16
MIN_INK_PIXELS = 30
MIN_INK_EXTENT = 10
MIN_INK_CONTRAST = 20
DEFAULT_MAX_PIXELS = 40_000_000
# The canvas is 220 pixels wide: past a few thousand pixels a side an image holds no more detail, only
# more memory for the float work (about 9 bytes a pixel). Longer images are reduced to this first.
# The training datasets (at most 640 pixels a side) and ordinary scans stay as they are.
REDUCE_ABOVE_SIDE = 3000
# Images are made gray a square tile of about this many pixels at a time, so the conversions (RGBA
# composited on white, 16-bit or float scaled to 8 bits) never copy a whole big image.
TILE_PIXELS = 1 << 20
# EXIF orientations that turn the image a quarter (the upright image's width is the stored height).
SWAPS_WIDTH_AND_HEIGHT = (5, 6, 7, 8)
# Pillow modes held as 16- or 32-bit numbers: made gray by scaling with the whole image's maximum.
NUMERIC_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
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

# Uneven light (a phone photo, a scanner's shading): the paper's brightness is estimated on a copy
# reduced to at most PAPER_SCALE pixels a side, where a grey closing of PAPER_WINDOW pixels covers the
# ink. Where it varies by more than UNEVEN_LIGHT grey levels across the page (2nd to 98th percentile),
# every pixel is divided by it before Otsu; evenly lit scans are left exactly as they are.
PAPER_SCALE = 160
PAPER_WINDOW = 21  # 9 took the thick ink of tight crops for shade
UNEVEN_LIGHT = 24

# Printed rules (a form's signature line, a scanner's edge, the frame of a signature box): a straight
# horizontal or vertical line of ink at least RULE_FRACTION of the page's width or height and
# RULE_MIN_LENGTH pixels long, level within RULE_BAND pixels either way (a 3-pixel line up to 0.7
# degrees off on a 640-pixel page), that reaches past the rest of the ink by RULE_OVERHANG of the page
# (and RULE_MIN_OVERHANG pixels) on its two sides together (a vertical one: near the page's left or
# right side, RULE_EDGE), or that runs from one side of the page to the other (to within RULE_CUT
# pixels: handwriting ends inside the page, a printed line is cut by its edge), is not handwriting;
# nor is a hollow rectangle of level lines of at least FRAME_MIN_SIDE a side. Both are dropped,
# except where strokes cross or touch them. A page cropped tight to the ink keeps all of it, unless
# the crop comes within RULE_CUT pixels of both ends of a level stroke at least RULE_FRACTION of
# the page and RULE_MIN_LENGTH pixels long (a crop with no margin; an upright stroke only near the
# page's left or right side).
RULE_FRACTION = 0.5
RULE_MIN_LENGTH = 100  # at 50, the stems of letters on pages cropped tight to the ink
RULE_BAND = 1
RULE_OVERHANG = 0.05
RULE_MIN_OVERHANG = 20  # a word's headline (Devanagari) reaches 13 pixels past its letters
FRAME_MIN_SIDE = 50
RULE_EDGE = 0.05  # vertical rules only this close to the page's sides (frames anywhere)
RULE_CUT = 1  # a line cut by the page's edge ends within this many pixels of it
# Strokes keep the ink they share with a rule (see _strokes_across): the band's ink connected to
# the ink outside, and the line's pixels where a stroke crosses it: a run across the line at most
# CROSSING_MAX_RUN long with a stroke's ink within CROSSING_REACH pixels beyond both its ends. A
# rule's line is its runs of at least RULE_CORE_RUN pixels along it.
RULE_CORE_RUN = FRAME_MIN_SIDE // 2
CROSSING_MAX_RUN = 16
CROSSING_REACH = 2

ImageSource = str | Path | bytes | bytearray | memoryview | Image.Image | np.ndarray


def open_image(
    source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None
) -> Image.Image:
    """Decode ``source`` into an 8-bit grayscale PIL image with EXIF orientation applied.

    Files (bytes or paths) must be in one of ``ACCEPTED_FORMATS``; a PIL image or an array is taken
    as it is. With ``max_side``, an image longer than that on a side comes back reduced by the
    smallest integer factor that brings it within (a box average).

    Raises:
        UndecodableImageError: empty, unreadable, malformed, or not in an accepted format.
        ImageTooLargeError: more than ``max_pixels`` pixels (checked before decoding), oversized
            metadata, or a JPEG with more than ``MAX_JPEG_SCANS`` scans.
        ImageTooSmallError: fewer than ``MIN_IMAGE_SIDE`` pixels on a side (before any reduction).
    """
    if isinstance(source, np.ndarray):
        return _gray_from_array(source, max_side)
    if isinstance(source, Image.Image):
        with _decoding_errors(source):
            return _decode(source, max_pixels, max_side, opened_here=False)
    with _decoding_errors(source):
        data = _file_bytes(source)
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
            _check_jpeg_scans(image, data)
            return _decode(image, max_pixels, max_side, opened_here=True)


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


def _decode(image: Image.Image, max_pixels: int, max_side: int | None, opened_here: bool) -> Image.Image:
    """Check the size, load the pixels (frame 0 of a file opened here), go gray, apply EXIF orientation.

    A big JPEG opened here is decoded at a reduced scale (luma only), never at full size.
    """
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image has {width}x{height} pixels; at most {max_pixels} are accepted"
        )
    if opened_here:
        image.seek(0)
        _draft_reduced(image, _reduction_factor(image.size, max_side))
    image.load()
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation in SWAPS_WIDTH_AND_HEIGHT:
        width, height = height, width
    _check_image_side(width, height)
    factor = _reduction_factor(image.size, max_side)
    boxes = _tiles(image.size, factor)
    peak = _peak(np.asarray(image.crop(box)) for box in boxes) if image.mode in NUMERIC_MODES else None
    gray = _tiled_gray(image.size, factor, boxes, lambda box: _to_gray(image.crop(box), peak))
    if orientation == 1:
        return gray
    gray.getexif()[ExifTags.Base.Orientation] = orientation  # turn the small gray copy, not the original
    return ImageOps.exif_transpose(gray)


def _gray_from_array(array: np.ndarray, max_side: int | None) -> Image.Image:
    """An H x W (x 1, 3 or 4) numeric array as 8-bit grayscale, reduced past ``max_side``."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":  # bool, int, uint, float
        raise UndecodableImageError(f"an image array must hold real numbers, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    colour = array.ndim == 3 and array.shape[2] in (3, 4)
    if not colour and (array.ndim != 2 or array.size == 0):
        raise UndecodableImageError(f"an image array must be H x W (x C), got shape {array.shape}")
    height, width = array.shape[:2]
    _check_image_side(width, height)
    factor = _reduction_factor((width, height), max_side)
    boxes = _tiles((width, height), factor)
    peak = None if array.dtype in (np.uint8, np.bool_) else _peak(array[_rows_cols(box)] for box in boxes)
    return _tiled_gray(
        (width, height), factor, boxes, lambda box: _array_to_gray(array[_rows_cols(box)], peak)
    )


def _draft_reduced(image: Image.Image, factor: int) -> None:
    """Have a JPEG to be reduced by ``factor`` decoded at a smaller scale (and luma only).

    libjpeg scales by 1/2, 1/4 or 1/8 while decoding (here never by more than 1/factor), so the
    full-size pixels are never held.
    """
    if factor > 1 and image.format in ("JPEG", "MPO"):
        width, height = image.size
        image.draft("L", (-(-width // factor), -(-height // factor)))


def _check_image_side(width: int, height: int) -> None:
    """Refuse an image too narrow or too low to hold a signature."""
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ImageTooSmallError(
            f"the image is {width}x{height} pixels; a signature needs at least "
            f"{MIN_IMAGE_SIDE} on each side"
        )


def _reduction_factor(size: tuple[int, int], max_side: int | None) -> int:
    """The smallest integer factor that brings the longest side of ``size`` within ``max_side``."""
    return 1 if max_side is None else max(1, -(-max(size) // max_side))


Box = tuple[int, int, int, int]  # left, top, right, bottom


def _tiles(size: tuple[int, int], factor: int) -> list[Box]:
    """Square tiles of about ``TILE_PIXELS`` covering ``size``, their corners on multiples of ``factor``."""
    width, height = size
    step = factor * max(1, math.isqrt(TILE_PIXELS) // factor)
    return [
        (left, top, min(width, left + step), min(height, top + step))
        for top in range(0, height, step)
        for left in range(0, width, step)
    ]


def _rows_cols(box: Box) -> tuple[slice, slice]:
    """The array index of a tile."""
    left, top, right, bottom = box
    return slice(top, bottom), slice(left, right)


def _tiled_gray(
    size: tuple[int, int], factor: int, boxes: list[Box], gray_tile: Callable[[Box], Image.Image]
) -> Image.Image:
    """The image of ``size`` in gray and reduced by ``factor``, from ``gray_tile`` of each tile.

    Gray conversion works pixel by pixel and the tiles are aligned to the factor, so this is exactly
    the whole image converted and then reduced, without a whole-image temporary.
    """
    if len(boxes) == 1:
        return gray_tile(boxes[0]).reduce(factor)
    width, height = size
    gray = Image.new("L", (-(-width // factor), -(-height // factor)))
    for box in boxes:
        gray.paste(gray_tile(box).reduce(factor), (box[0] // factor, box[1] // factor))
    return gray


def _peak(tiles: Iterator[np.ndarray]) -> float:
    """The largest value of an image given tile by tile (NaN as 0, at least 0), as ``_to_uint8`` sees it."""
    return max(float(np.nan_to_num(tile.astype(np.float64)).max(initial=0.0)) for tile in tiles)


def _to_gray(image: Image.Image, peak: float | None = None) -> Image.Image:
    """Convert any Pillow mode to 8-bit grayscale, compositing transparency onto white.

    ``peak``: for a tile of a 16- or 32-bit image, the whole image's largest value (see ``_to_uint8``).
    """
    if image.mode in NUMERIC_MODES:
        return _array_to_gray(np.asarray(image), peak)
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


def _array_to_gray(array: np.ndarray, peak: float | None = None) -> Image.Image:
    """Turn a checked H x W or H x W x 3/4 numeric array (see ``_gray_from_array``) into 8-bit gray."""
    if array.ndim == 3:
        mode = "RGB" if array.shape[2] == 3 else "RGBA"
        return _to_gray(Image.fromarray(_to_uint8(array, peak), mode=mode))
    return Image.fromarray(_to_uint8(array, peak), mode="L")


def _to_uint8(array: np.ndarray, peak: float | None = None) -> np.ndarray:
    """Scale an integer or float array to uint8 by its type's range.

    Floats up to 1 are taken as [0, 1], larger as [0, 255]; integers past 255 as 16-bit. ``peak``
    decides that for a tile of a bigger image (the whole image's ``_peak``); by default the array's own.
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return np.where(array, 255, 0).astype(np.uint8)
    values = np.nan_to_num(array.astype(np.float64), copy=False)
    if peak is None:
        peak = float(values.max(initial=0.0))
    if np.issubdtype(array.dtype, np.floating):
        if peak <= 1.0:
            values *= 255.0
    else:
        values *= 255.0 / (65535.0 if peak > 255 else 255.0)
    return np.clip(values, 0, 255, out=values).astype(np.uint8)


def otsu_threshold(gray: np.ndarray) -> int:
    """Otsu's threshold of a uint8 array: the level that best separates two intensity classes."""
    histogram = _bincount(gray, 256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight_low = np.cumsum(histogram)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(histogram * levels)
    mean_low = sum_low / np.maximum(weight_low, 1e-12)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1e-12)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return int(np.argmax(between))


def _bincount(values: np.ndarray, length: int) -> np.ndarray:
    """``np.bincount(values.ravel(), minlength=length)`` a chunk at a time (it copies its input to int64)."""
    flat = values.reshape(-1)
    counts = np.zeros(length, dtype=np.int64)
    for start in range(0, flat.size, TILE_PIXELS):
        counts += np.bincount(flat[start : start + TILE_PIXELS], minlength=length)
    return counts


def dark_on_light(gray: np.ndarray) -> np.ndarray:
    """``gray`` with dark ink on light paper: a scan of light ink on dark paper is flipped.

    The page is light ink on dark paper when most of it (the median) is darker than halfway between
    its darkest and brightest pixels (0.1st and 99.9th percentiles), not than a fixed grey: a shaded
    or dim photo of dark ink on white paper stays as it is.
    """
    step = max(1, max(gray.shape) // 1000)
    sample = gray[::step, ::step]
    darkest, brightest = np.percentile(sample, [0.1, 99.9])
    return 255 - gray if np.median(sample) < (darkest + brightest) / 2 else gray


def paper_brightness(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness under dark ink, on a copy reduced to at most ``PAPER_SCALE`` a side."""
    height, width = gray.shape
    factor = max(1, math.ceil(max(height, width) / PAPER_SCALE))
    small = np.asarray(Image.fromarray(gray).reduce(factor), dtype=np.float32)
    closed = ndimage.grey_closing(small, size=(PAPER_WINDOW, PAPER_WINDOW))
    return ndimage.uniform_filter(closed, size=PAPER_WINDOW)


def even_out_light(gray: np.ndarray) -> np.ndarray:
    """``gray`` divided by its paper brightness when the light is uneven, else ``gray`` itself."""
    paper = paper_brightness(gray)
    low, high = np.percentile(paper, [2, 98])
    if high - low <= UNEVEN_LIGHT:
        return gray
    height, width = gray.shape
    full = np.asarray(Image.fromarray(paper, mode="F").resize((width, height), Image.Resampling.BILINEAR))
    evened = gray.astype(np.float32) * (float(high) / np.maximum(full, 1.0))
    return np.clip(evened + 0.5, 0, 255).astype(np.uint8)


def page_ink(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A decoded uint8 page made dark ink on evenly lit paper, its ink mask (printed rules still in)
    and the paper's grey level: the steps of ``preprocess`` before the rules are dropped."""
    gray = even_out_light(dark_on_light(gray))
    mask, paper = ink_mask(gray)
    return gray, mask, paper


def ink_mask(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Boolean mask of the ink in a dark-ink-on-light-paper uint8 image, and the paper's grey level.

    The threshold comes from a lightly smoothed copy (robust to scanner noise), but a pixel is ink
    only if it is also darker than the threshold itself, so the mask does not spread past the stroke.

    Raises:
        NoInkError: the image has no ink clearly darker than its background.
    """
    # In float32 and in place: the same numbers as smoothing a float32 copy, without the copies.
    smoothed = ndimage.gaussian_filter(gray, sigma=1.0, output=np.float32)
    smoothed += 0.5
    smoothed_u8 = np.clip(smoothed, 0, 255, out=smoothed).astype(np.uint8)
    del smoothed
    threshold = otsu_threshold(smoothed_u8)
    mask = smoothed_u8 <= threshold
    if not mask.any() or mask.all():
        raise NoInkError("the image holds no ink (it is uniform)")
    contrast = float(np.median(smoothed_u8[~mask]) - np.median(smoothed_u8[mask]))
    if contrast < MIN_INK_CONTRAST:
        raise NoInkError("the image holds no ink clearly darker than the paper")
    paper = float(np.median(gray[~mask]))
    return _drop_specks(mask & (gray <= threshold)), paper


def _run_labels(mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Each unbroken run of ``mask`` along ``axis`` labelled (0 off the ink), and each label's length."""
    structure = np.zeros((3, 3), dtype=bool)
    if axis == 0:
        structure[:, 1] = True
    else:
        structure[1, :] = True
    labels, _ = ndimage.label(mask, structure=structure)
    sizes = np.bincount(labels.ravel()).astype(np.int32)
    sizes[0] = 0
    return labels, sizes


def _straight_runs(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """The pixels of ``mask`` inside an unbroken run of at least ``length`` along ``axis``.

    Only the lines (rows for axis 1, columns for axis 0) holding that much ink are searched.
    """
    runs = np.zeros_like(mask)
    lines = np.flatnonzero(np.count_nonzero(mask, axis=axis) >= length)
    if lines.size == 0:
        return runs
    labels, sizes = _run_labels(np.take(mask, lines, axis=1 - axis), axis)
    found = (sizes >= length)[labels]
    if axis == 1:
        runs[lines, :] = found
    else:
        runs[:, lines] = found
    return runs


def _level_lines(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """The ink of lines at least ``length`` long along ``axis``, level within ``RULE_BAND``: runs
    are sought in the ink widened by the band across the line (so a line a little off level still
    runs unbroken), then widened by twice the band again (a skewed line's rows at the ends of each
    run) and narrowed back to the ink: the line and the ink of strokes within 3 pixels of it
    (``drop_printed_rules`` gives the strokes theirs back)."""
    band = 2 * RULE_BAND + 1
    widened = np.convolve(np.count_nonzero(mask, axis=axis), np.ones(band, dtype=np.int64), mode="same")
    if widened.max(initial=0) < length:  # no line of the widened ink holds that much: the usual case
        return np.zeros_like(mask)
    runs = _straight_runs(_widen(mask, RULE_BAND, 1 - axis), length, axis)
    if not runs.any():
        return runs
    return mask & _widen(runs, 2 * RULE_BAND, 1 - axis)


def _widen(mask: np.ndarray, reach: int, axis: int) -> np.ndarray:
    """``mask`` dilated ``reach`` pixels either way along ``axis``: ``ndimage.binary_dilation`` with a
    straight line of ``2 * reach + 1`` pixels (or ``reach`` iterations of 3), pixels past the edge
    off, the same pixels, done as shifted ORs (scipy's general loop took most of the time of
    preprocessing a headline script, whose rows hold enough ink to be searched for rules)."""
    widened = mask.copy()
    for step in range(1, min(reach, mask.shape[axis] - 1) + 1):
        later = (slice(None),) * axis + (slice(step, None),)
        earlier = (slice(None),) * axis + (slice(None, -step),)
        widened[later] |= mask[earlier]
        widened[earlier] |= mask[later]
    return widened


def _overhanging(lines: np.ndarray, mask: np.ndarray, axis: int) -> np.ndarray:
    """The connected pieces of ``lines`` that reach past the rest of the ink along ``axis`` by
    ``RULE_OVERHANG`` of the page (and ``RULE_MIN_OVERHANG`` pixels) on their two sides together
    (the rest empty: every piece), or that run from one side of the page to the other (``RULE_CUT``);
    vertical ones only within ``RULE_EDGE`` of the page's sides."""
    rest = np.flatnonzero(_drop_specks(mask & ~lines).any(axis=1 - axis))  # not the lines' stray ends
    labels, _ = ndimage.label(lines, structure=np.ones((3, 3), dtype=bool))
    margin = max(RULE_OVERHANG * mask.shape[axis], RULE_MIN_OVERHANG)
    keep = np.zeros_like(lines)
    across = mask.shape[1 - axis]
    edge = max(RULE_EDGE * across, RULE_MIN_OVERHANG)
    for number, box in enumerate(ndimage.find_objects(labels), start=1):
        start, stop = box[axis].start, box[axis].stop - 1
        if axis == 0 and edge <= box[1].start and box[1].stop <= across - edge:
            continue  # a vertical line away from the page's sides: a letter's stem, not a rule
        side_to_side = start <= RULE_CUT and stop >= mask.shape[axis] - 1 - RULE_CUT
        if (side_to_side or rest.size == 0
                or max(rest[0] - start, 0) + max(stop - rest[-1], 0) >= margin):
            keep[box] |= labels[box] == number
    return keep


def _frames(mask: np.ndarray) -> np.ndarray:
    """Hollow rectangles of level lines of at least ``FRAME_MIN_SIDE`` a side (a box drawn around
    the signature): each connected piece of such lines that covers nine tenths of all four sides of
    its own bounding box and at most half of the box."""
    frames = np.zeros_like(mask)
    across = _level_lines(mask, FRAME_MIN_SIDE, 1)
    if not across.any():
        return frames
    down = _level_lines(mask, FRAME_MIN_SIDE, 0)
    if not down.any():
        return frames
    band = 2 * RULE_BAND + 4
    labels, _ = ndimage.label(across | down, structure=np.ones((3, 3), dtype=bool))
    for number, box in enumerate(ndimage.find_objects(labels), start=1):
        piece = labels[box] == number
        top_bottom, left_right = across[box] & piece, down[box] & piece
        sides = (top_bottom[:band].any(axis=0), top_bottom[-band:].any(axis=0),
                 left_right[:, :band].any(axis=1), left_right[:, -band:].any(axis=1))
        if piece.mean() <= 0.5 and min(side.mean() for side in sides) >= 0.9:
            frames[box] |= piece
    return frames


def drop_printed_rules(mask: np.ndarray) -> np.ndarray:
    """``mask`` without printed rules and frames (see ``RULE_FRACTION``), the strokes keeping the ink
    they share with them; itself when it has none."""
    rules = _frames(mask)
    for _ in range(2):  # twice: a line across may hide behind one along, as on a scanned form
        for axis in (0, 1):
            extent = mask.shape[axis]
            length = max(RULE_MIN_LENGTH, int(RULE_FRACTION * extent))
            if length <= extent:
                lines = _level_lines(mask & ~rules, length, axis)
                if lines.any():
                    rules |= _overhanging(lines, mask & ~rules, axis)
        if not rules.any():
            return mask  # the first round found nothing: the second would find nothing either
    return _drop_specks(mask & ~(rules & ~_strokes_across(mask, rules)))


def _strokes_across(mask: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """The pixels of ``rules`` that belong to handwriting crossing or touching them.

    ``rules`` holds each rule's line (its long runs, at least ``RULE_CORE_RUN`` along it) and the
    ink in a band either side of it, which strokes share. Ink of that band connected to the ink
    outside the rules is a stroke's, and a short run across a line (at most ``CROSSING_MAX_RUN``)
    with stroke ink within ``CROSSING_REACH`` pixels beyond both of its ends is where a stroke
    crosses the line. Dropping those would cut every stroke a line crosses."""
    core = rules & ((_run_lengths(rules, 0) >= RULE_CORE_RUN) | (_run_lengths(rules, 1) >= RULE_CORE_RUN))
    rest = mask & ~rules
    labels, _ = ndimage.label(rest | (rules & ~core), structure=np.ones((3, 3), dtype=bool))
    touching = np.unique(labels[rest])
    strokes = np.isin(labels, touching[touching > 0])
    return (strokes | _crossings(strokes, core)) & rules


def _run_lengths(mask: np.ndarray, axis: int) -> np.ndarray:
    """Each pixel of ``mask``: the length of its unbroken run along ``axis`` (0 off the ink)."""
    labels, sizes = _run_labels(mask, axis)
    return sizes[labels]


def _crossings(strokes: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """The short runs of ``lines`` across a line (at most ``CROSSING_MAX_RUN``) with ink of
    ``strokes`` within ``CROSSING_REACH`` pixels beyond both of their ends (and as far to either
    side: a slanted stroke)."""
    crossings = np.zeros_like(lines)
    reach = CROSSING_REACH
    padded = np.pad(strokes, reach)
    for axis in (0, 1):
        labels, sizes = _run_labels(lines, axis)
        short = np.flatnonzero((sizes > 0) & (sizes <= CROSSING_MAX_RUN))
        if short.size == 0:
            continue
        along = np.indices(lines.shape)[axis]
        other = np.indices(lines.shape)[1 - axis]
        first = np.asarray(ndimage.minimum(along, labels, short), dtype=np.int64) + reach  # in padded
        last = np.asarray(ndimage.maximum(along, labels, short), dtype=np.int64) + reach
        line = np.asarray(ndimage.minimum(other, labels, short), dtype=np.int64) + reach
        before = np.zeros(short.size, dtype=bool)
        after = np.zeros(short.size, dtype=bool)
        for step in range(1, reach + 1):
            for side in range(-reach, reach + 1):
                if axis == 0:
                    before |= padded[first - step, line + side]
                    after |= padded[last + step, line + side]
                else:
                    before |= padded[line + side, first - step]
                    after |= padded[line + side, last + step]
        crossed = np.zeros(sizes.size, dtype=bool)
        crossed[short[before & after]] = True
        crossings |= crossed[labels]
    return crossings


def _drop_specks(mask: np.ndarray) -> np.ndarray:
    """Remove connected ink components too small to be pen strokes (scanner dust)."""
    longest = max(mask.shape)
    min_area = max(2, int(round(6 * (longest / 500.0) ** 2)))
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return mask
    areas = _bincount(labels, count + 1)
    keep = areas >= min_area
    keep[0] = False
    return keep[labels]


def preprocess(
    source: ImageSource,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = REDUCE_ABOVE_SIDE,
) -> np.ndarray:
    """Preprocess one signature image into a ``(CANVAS_HEIGHT, CANVAS_WIDTH, 1)`` float32 array.

    Ink is high (up to 1.0), the background is exactly 0. An image longer than ``max_side`` on a
    side is reduced first; ``None`` never reduces (for comparisons: a 40 Mpx image then takes 0.4 GB).

    Raises:
        UndecodableImageError, ImageTooLargeError: the input is not a usable image file.
        ImageTooSmallError: the image or its ink is too small to hold a signature.
        NoInkError: a blank page or a picture without ink.
    """
    gray, mask, paper = page_ink(np.asarray(open_image(source, max_pixels=max_pixels, max_side=max_side),
                                            dtype=np.uint8))
    mask = drop_printed_rules(mask)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or int(mask.sum()) < MIN_INK_PIXELS:
        raise NoInkError("the image holds too little ink to be a signature")
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if max(bottom - top, right - left) < MIN_INK_EXTENT:
        raise ImageTooSmallError("the ink covers too small an area to be a signature")
    crop = slice(top, bottom), slice(left, right)
    strength = np.clip(paper - gray[crop].astype(np.float32), 0.0, 255.0)
    ink = np.where(mask[crop], strength, 0.0).astype(np.float32)
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


def refit_canvas(canvas: np.ndarray) -> np.ndarray:
    """A canvas of any size (``(H, W)`` or ``(H, W, 1)``, ink high) as this version's canvas: its ink
    cropped and fitted again, centred, aspect kept. One already of this size is returned unchanged.

    A reference stored by a sigverify with another canvas size is embedded this way on reindex; what
    the smaller canvas did not hold (finer detail) cannot come back.
    """
    pixels = np.asarray(canvas, dtype=np.float32)
    if pixels.ndim == 3:
        pixels = pixels[:, :, 0]
    if pixels.shape == (CANVAS_HEIGHT, CANVAS_WIDTH):
        return pixels[:, :, None]
    rows = np.flatnonzero(pixels.max(axis=1) > 0)
    cols = np.flatnonzero(pixels.max(axis=0) > 0)
    if rows.size == 0:
        return np.zeros((CANVAS_HEIGHT, CANVAS_WIDTH, 1), dtype=np.float32)
    ink = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return _fit_to_canvas(np.ascontiguousarray(ink * 255.0))


def preprocess_many(
    sources: list[ImageSource], max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Preprocess a list of images into one ``(n, H, W, 1)`` float32 batch."""
    if not sources:
        return np.zeros((0, CANVAS_HEIGHT, CANVAS_WIDTH, 1), dtype=np.float32)
    return np.stack([preprocess(source, max_pixels=max_pixels) for source in sources])
