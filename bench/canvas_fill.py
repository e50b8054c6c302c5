"""How much of the canvas the datasets' signatures cover: the reason for a wider, lower canvas.

Every usable image of each dataset is preprocessed (through the shared canvas cache), its ink's
bounding box measured on the canvas (pixels above 5% of full ink), and per dataset the 10th / 50th /
90th percentile of the ink's aspect ratio (width / height) and the median share of the canvas the box
covers are printed as JSON, with how much larger another canvas would draw the median signature:

    python -m bench.canvas_fill [--other 120 280]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from bench.compare_models import CACHE, dataset_dirs

INK_LEVEL = round(0.05 * 255)  # a canvas pixel above this is ink (canvases are uint8, ink high)


def ink_boxes(canvases: np.ndarray) -> np.ndarray:
    """(height, width) of the ink's bounding box on each canvas ``(n, H, W)``."""
    ink = canvases > INK_LEVEL
    return np.stack([_extent(ink.any(axis=2)), _extent(ink.any(axis=1))], axis=1)


def _extent(mask: np.ndarray) -> np.ndarray:
    """Per row of ``mask``, first to last True inclusive (0 for a row without any)."""
    first, last = mask.argmax(axis=1), mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
    return np.where(mask.any(axis=1), last - first + 1, 0)


def drawn_scale(aspect: float, canvas: tuple[int, int], other: tuple[int, int], margin: int) -> float:
    """How many times larger ``other`` draws ink of this aspect than ``canvas`` (both fitted, aspect kept)."""
    def fitted(size: tuple[int, int]) -> float:
        return min(size[0] - 2 * margin, (size[1] - 2 * margin) / aspect)  # the ink's height there

    return fitted(other) / fitted(canvas)


def main() -> None:
    from siamese.canvas_cache import load_writer_canvases
    from siamese.preprocess import CANVAS_HEIGHT, CANVAS_MARGIN, CANVAS_WIDTH

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=int, nargs=2, default=(120, 280), metavar=("HEIGHT", "WIDTH"))
    args = parser.parse_args()
    report = {"canvas": [CANVAS_HEIGHT, CANVAS_WIDTH], "other": list(args.other), "datasets": {}}
    for root in dataset_dirs():
        _, canvases, usable = load_writer_canvases([root], None, CACHE, progress=False)
        boxes = ink_boxes(canvases[usable]).astype(np.float64)
        aspect = boxes[:, 1] / boxes[:, 0]
        median = float(np.median(aspect))
        report["datasets"][root.name] = {
            "images": int(usable.sum()),
            "aspect_p10_p50_p90": [round(float(x), 2) for x in np.percentile(aspect, [10, 50, 90])],
            "median_canvas_share": round(float(np.median(boxes.prod(axis=1))) / canvases[0].size, 2),
            "median_drawn_larger_on_other": round(
                drawn_scale(median, (CANVAS_HEIGHT, CANVAS_WIDTH), tuple(args.other), CANVAS_MARGIN), 2),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
