"""Accuracy when queries are captured differently from the references (needs ../shared/datasets).

A bank enrolls references from one scanner and later checks signatures from another: a cheque
scanner, a compressed image, a pen of another colour. For the shipped model's test writers, the
references stay as the dataset scanned them, and every query (genuine, skilled forgery, random
forgery) first goes through one capture change, then the service's preprocessing and scoring rule
(the `sigverify evaluate` protocol: 5 references, seed 0, the model's threshold). ``none`` reads the
files the same way with no change, and reproduces ``sigverify evaluate``. A query that preprocessing
rejects is left out and counted (``unusable``); the service would answer with an error.

    python -m bench.capture_shift [--shifts none jpeg_q20 ...]
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from bench.compare_models import CACHE, dataset_dirs

PAPER = (236, 226, 196)  # cream paper
BLUE_INK = (20, 45, 150)


def jpeg(quality: int) -> Callable[[Image.Image], Image.Image]:
    def change(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.convert("L").save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue()))
    return change


def rescale(factor: float) -> Callable[[Image.Image], Image.Image]:
    def change(image: Image.Image) -> Image.Image:
        width, height = image.size
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        return image.convert("L").resize(size, Image.Resampling.LANCZOS)
    return change


def rotate(degrees: float) -> Callable[[Image.Image], Image.Image]:
    def change(image: Image.Image) -> Image.Image:
        gray = image.convert("L")
        paper = int(np.percentile(np.asarray(gray), 90))
        return gray.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=paper)
    return change


def blue_ink_on_cream(image: Image.Image) -> Image.Image:
    """Dark becomes blue ink, light becomes cream paper, as a colour scan."""
    darkness = 1.0 - np.asarray(image.convert("L"), dtype=np.float32)[..., None] / 255.0
    paper, ink = np.array(PAPER, np.float32), np.array(BLUE_INK, np.float32)
    return Image.fromarray(np.round(paper + (ink - paper) * darkness).astype(np.uint8), "RGB")


def shadow(image: Image.Image) -> Image.Image:
    """Uneven light, as from a phone camera: brightness falls to 60% across the page."""
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    light = np.linspace(1.0, 0.6, gray.shape[1], dtype=np.float32)[None, :]
    return Image.fromarray(np.round(gray * light).astype(np.uint8), "L")


def noisy_blurred(image: Image.Image) -> Image.Image:
    """A soft, grainy scan: blur of radius 1, then Gaussian noise of 10 grey levels."""
    blurred = np.asarray(image.convert("L").filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32)
    noise = np.random.default_rng(blurred.size).normal(0.0, 10.0, blurred.shape)
    return Image.fromarray(np.clip(blurred + noise, 0, 255).astype(np.uint8), "L")


def _ink_box(gray: np.ndarray) -> tuple[int, int, int, int]:
    """Rows and columns (top, bottom, left, right) of the handwriting as preprocessing finds it: the
    page's ink without the rules it drops (a scanner's edge line is not part of the signature)."""
    from siamese.preprocess import drop_printed_rules, page_ink

    ink = drop_printed_rules(page_ink(gray)[1])
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def signature_line(image: Image.Image) -> Image.Image:
    """A printed line (3 pixels, grey 60) across the page at 85% of the signature's height, as on a
    form or cheque."""
    gray = np.array(image.convert("L"))
    top, bottom, _, _ = _ink_box(gray)
    row = top + (bottom - top) * 85 // 100
    gray[max(0, row - 1) : row + 2, :] = 60
    return Image.fromarray(gray, "L")


def _frame(gray: np.ndarray, top: int, bottom: int, left: int, right: int) -> Image.Image:
    """``gray`` with a printed frame (3 pixels, grey 60) whose outer corners are the given pixels."""
    framed = gray.copy()
    for rows, cols in (((top, top + 3), (left, right + 1)), ((bottom - 2, bottom + 1), (left, right + 1)),
                       ((top, bottom + 1), (left, left + 3)), ((top, bottom + 1), (right - 2, right + 1))):
        framed[rows[0] : rows[1], cols[0] : cols[1]] = 60
    return Image.fromarray(framed, "L")


def box_crop(image: Image.Image) -> Image.Image:
    """A form's signature box cut out with its frame: a frame 4 pixels inside the page's edges."""
    gray = np.array(image.convert("L"))
    height, width = gray.shape
    return _frame(gray, 4, height - 5, 4, width - 5)


def tight_box(image: Image.Image) -> Image.Image:
    """A frame drawn 12 pixels around the signature's ink, well inside the page."""
    gray = np.array(image.convert("L"))
    top, bottom, left, right = _ink_box(gray)
    height, width = gray.shape
    return _frame(gray, max(0, top - 12), min(height - 1, bottom + 12), max(0, left - 12),
                  min(width - 1, right + 12))


def thicker_pen(image: Image.Image) -> Image.Image:
    """Strokes one pixel wider on each side (a grey-level erosion of the paper)."""
    return image.convert("L").filter(ImageFilter.MinFilter(3))


def thinner_pen(image: Image.Image) -> Image.Image:
    """Strokes one pixel narrower on each side (a grey-level dilation of the paper), and paler: a
    stroke 2 or 3 pixels wide is left as a grey trace 1 pixel wide, lighter than Otsu's threshold."""
    return image.convert("L").filter(ImageFilter.MaxFilter(3))


def finer_pen(image: Image.Image) -> Image.Image:
    """Strokes one pixel narrower on each side with their ink as dark as before: a finer pen with
    the same ink. ``thinner_pen`` also pales them (the grey dilation takes a thin stroke's core up
    to the grey of its edges). Here one pass of topology-preserving thinning of the ink (Otsu's
    threshold; ``skimage.morphology.thin``) says which pixels stay, at their own grey level, so no
    stroke is broken; the rest of the page is ``thinner_pen``'s."""
    from skimage.morphology import thin

    from siamese.preprocess import otsu_threshold

    page = image.convert("L")
    gray, narrower = np.asarray(page), np.asarray(page.filter(ImageFilter.MaxFilter(3)))
    kept = thin(gray <= otsu_threshold(gray), max_num_iter=1)
    return Image.fromarray(np.where(kept, gray, narrower).astype(np.uint8), "L")


SHIFTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "none": lambda image: image,
    "jpeg_q20": jpeg(20),
    "half_resolution": rescale(0.5),
    "rotated_4_degrees": rotate(4.0),
    "blue_ink_cream_paper": blue_ink_on_cream,
    "shadow": shadow,
    "noisy_blurred": noisy_blurred,
    "thicker_pen": thicker_pen,
    "thinner_pen": thinner_pen,
    "finer_pen": finer_pen,
    "signature_line": signature_line,
    "box_crop": box_crop,
    "tight_box": tight_box,
}


def shifted_canvases(paths: list, change: Callable[[Image.Image], Image.Image]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Canvases of the changed images, quantised like the cache, and the mask of usable ones."""
    from siamese.errors import ImageError
    from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH, preprocess

    canvases = np.zeros((len(paths), CANVAS_HEIGHT, CANVAS_WIDTH), dtype=np.uint8)
    usable = np.zeros(len(paths), dtype=bool)
    for row, path in enumerate(paths):
        with Image.open(path) as image:
            try:
                canvases[row] = np.round(preprocess(change(image))[:, :, 0] * 255.0).astype(np.uint8)
                usable[row] = True
            except ImageError:
                continue
    return canvases, usable


def run(shifts: list[str], model: Any = None, roots: list[Path] | None = None,
        writers: set[str] | None = None) -> dict[str, Any]:
    """Per dataset folder and shift: EERs, FAR/FRR at the model's threshold and unusable queries.

    Defaults: the shipped model, the shared datasets and the model card's test writers.
    """
    from siamese.canvas_cache import load_writer_canvases
    from siamese.evaluation import build_trials, embed_canvases, index_records, score_trials, summarize
    from siamese.model import SignatureModel

    model = model or SignatureModel.load()
    writers = writers if writers is not None else set(model.card["split"]["test"])
    results: dict[str, Any] = {"model_version": model.version, "threshold": model.threshold}
    for root in roots or dataset_dirs():
        records, canvases, usable = load_writer_canvases([root], writers, CACHE, progress=False)
        references = embed_canvases(model, canvases, usable)
        genuine, forged = index_records(records, usable)
        plan = build_trials(sorted({r.writer for r in records}), genuine, forged, 5, 0)
        asked_total = sum(len(asked) for _, _, asked in plan)
        rows = {}
        for name in shifts:
            changed, changed_usable = shifted_canvases([r.path for r in records], SHIFTS[name])
            queries = embed_canvases(model, changed, changed_usable)
            offset = len(records)  # queries follow the references in one array
            shifted_plan = [(writer, refs, [(index + offset, kind) for index, kind in asked
                                            if changed_usable[index]])
                            for writer, refs, asked in plan]
            trials = score_trials(model, np.concatenate([references, queries]), shifted_plan)
            row: dict[str, Any] = {"unusable_queries": asked_total - len(trials.scores)}
            if trials.scores:
                summary = summarize(trials, model.threshold)
                row.update({key: summary[key] for key in ("eer_skilled", "eer_random", "far", "frr",
                                                          "far_random")})
            rows[name] = row
        results[root.name] = rows
    return results


def dataset_pages(roots: list[Path] | None = None) -> dict[str, dict[str, Any]]:
    """Per dataset folder, over all of its images: how much the paper's brightness varies across a
    page (2nd to 98th percentile, as ``siamese.preprocess.even_out_light`` measures it) and how many
    pages evening out and ``drop_printed_rules`` change, with the files of the latter."""
    from siamese.datasets import load_dataset
    from siamese.preprocess import (
        UNEVEN_LIGHT,
        dark_on_light,
        drop_printed_rules,
        open_image,
        page_ink,
        paper_brightness,
    )

    results = {}
    for root in roots or dataset_dirs():
        spreads, ruled = [], []
        for record in load_dataset(root):
            page = np.asarray(open_image(record.path), dtype=np.uint8)
            low, high = np.percentile(paper_brightness(dark_on_light(page)), [2, 98])
            spreads.append(float(high - low))
            mask = page_ink(page)[1]
            if drop_printed_rules(mask) is not mask:
                ruled.append(str(record.path.relative_to(root)))
        values = np.array(spreads)
        results[root.name] = {"images": len(values), "paper_spread_median": float(np.median(values)),
                              "paper_spread_p99": float(np.percentile(values, 99)),
                              "paper_spread_max": float(values.max()),
                              "evened_out": int((values > UNEVEN_LIGHT).sum()),
                              "rules_dropped": len(ruled), "rules_dropped_files": ruled}
    return results


def tight_crops(per_dataset: int = 150, seed: int = 1, roots: list[Path] | None = None,
                margin: int = 2) -> dict[str, Any]:
    """Signatures cropped to their ink (``margin`` pixels of paper around it), as written and with
    strokes 4 pixels wider: on how many does ``drop_printed_rules`` drop ink? Pages with rules of
    their own are left out."""
    import random

    from siamese.datasets import load_dataset
    from siamese.preprocess import drop_printed_rules, page_ink

    rng = random.Random(seed)
    pages, changed = 0, []
    for root in roots or dataset_dirs():
        records = load_dataset(root)
        for record in rng.sample(records, min(per_dataset, len(records))):
            with Image.open(record.path) as image:
                gray = np.asarray(image.convert("L"))
            whole = page_ink(gray)[1]
            if drop_printed_rules(whole) is not whole:
                continue
            pages += 1
            for wider in (False, True):
                page = np.asarray(Image.fromarray(gray).filter(ImageFilter.MinFilter(5))) if wider else gray
                top, bottom, left, right = _ink_box(page)
                crop = np.ascontiguousarray(page[max(0, top - margin) : bottom + margin + 1,
                                                 max(0, left - margin) : right + margin + 1])
                mask = page_ink(crop)[1]
                dropped = drop_printed_rules(mask)
                if dropped is not mask:
                    kept = float(dropped.sum() / mask.sum())
                    changed.append({"file": f"{root.name}/{record.path.relative_to(root)}",
                                    "wider": wider, "ink_dropped": round(1 - kept, 4)})
    return {"margin": margin, "pages": pages, "crops": 2 * pages, "changed": changed}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shifts", nargs="+", choices=sorted(SHIFTS), default=list(SHIFTS))
    parser.add_argument("--pages", action="store_true",
                        help="instead: which of the datasets' own pages preprocessing evens out or "
                             "drops printed rules from")
    parser.add_argument("--tight-crops", action="store_true",
                        help="instead: does preprocessing drop ink from signatures cropped to their ink?")
    parser.add_argument("--margin", type=int, default=2,
                        help="with --tight-crops: pixels of paper left around the ink")
    parser.add_argument("--writers", choices=("test", "validation"), default="test",
                        help="the model card's split whose writers are scored")
    parser.add_argument("--model", type=Path, help="another model than the shipped one")
    options = parser.parse_args()
    if options.tight_crops:
        print(json.dumps(tight_crops(margin=options.margin), indent=1))
    elif options.pages:
        print(json.dumps(dataset_pages(), indent=1))
    else:
        from siamese.model import SignatureModel

        chosen = SignatureModel.load(options.model)
        print(json.dumps(run(options.shifts, chosen, writers=set(chosen.card["split"][options.writers])),
                         indent=1))
