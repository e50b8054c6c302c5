"""Pinned preprocessing outputs: a few synthetic scans (PNG files) and their canvases, in ``tests/data``.

Enrolled references keep the embeddings of the canvases they were preprocessed into, so a change of
preprocessing that moves canvases (even slightly) must be deliberate: it needs a new
``PREPROCESS_VERSION`` and a reindex. ``tests/test_preprocess.py`` preprocesses the stored files and
compares with the stored canvases (the files are stored too, so a new Pillow drawing or blurring
them differently cannot fail the test). After a deliberate change: ``python -m tests.golden_preprocess``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from tests.synthetic import png_bytes, synthetic_signature

GOLDEN_FILE = Path(__file__).parent / "data" / "preprocess_golden.npz"


def _noisy(image: Image.Image, level: int, spread: float, seed: int) -> Image.Image:
    """The drawing on paper of grey ``level`` with Gaussian scanner noise (ink kept dark)."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, dtype=np.float64)
    paper = np.where(pixels > 128, level, pixels) + rng.normal(0, spread, pixels.shape)
    return Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8), mode="L")


def _soft(image: Image.Image, radius: float = 1.2) -> Image.Image:
    """Soft stroke edges, as a scanner's optics give (the drawings are hard-edged)."""
    return image.filter(ImageFilter.GaussianBlur(radius))


def _specks(image: Image.Image, count: int, seed: int) -> Image.Image:
    """Dust: ``count`` dark single pixels scattered over the page."""
    rng = np.random.default_rng(seed)
    pixels = np.array(image)
    pixels[rng.integers(0, pixels.shape[0], count), rng.integers(0, pixels.shape[1], count)] = 30
    return Image.fromarray(pixels, mode="L")


def golden_inputs() -> dict[str, bytes]:
    """Named PNG files covering the paths a dataset scan or an upload takes (all under 3000 px)."""
    wide = _soft(synthetic_signature(3, 1, size=(560, 240)))
    return {
        "white_paper": png_bytes(synthetic_signature(1, 1)),
        "grey_noisy_scan": png_bytes(_noisy(_soft(synthetic_signature(2, 1, size=(640, 300))), 205, 6.0, 1)),
        "dusty_scan": png_bytes(_specks(wide, 200, 2)),
        "light_ink_on_dark": png_bytes(Image.eval(synthetic_signature(4, 2), lambda v: 255 - v)),
        "rgb_blue_ink": png_bytes(Image.merge("RGB", (wide, wide, Image.eval(wide, lambda v: max(v, 160))))),
        "large_page": png_bytes(_soft(synthetic_signature(5, 3, size=(2900, 1200)), 2.5)),
        "small_faint": png_bytes(synthetic_signature(6, 1, size=(120, 60), ink=150)),
    }


def stored() -> dict[str, tuple[bytes, np.ndarray]]:
    """Every stored input file and its stored canvas, by name."""
    with np.load(GOLDEN_FILE) as data:
        names = [key.removeprefix("png_") for key in data.files if key.startswith("png_")]
        return {name: (data[f"png_{name}"].tobytes(), data[f"canvas_{name}"]) for name in names}


def main() -> None:
    from siamese.preprocess import preprocess

    GOLDEN_FILE.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, data in golden_inputs().items():
        arrays[f"png_{name}"] = np.frombuffer(data, dtype=np.uint8)
        arrays[f"canvas_{name}"] = preprocess(data)
    np.savez_compressed(GOLDEN_FILE, **arrays)
    print(f"wrote {GOLDEN_FILE} ({GOLDEN_FILE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
