"""Preprocess many dataset images once, in parallel, and keep the canvases in a cache file.

Training and evaluation read thousands of images; preprocessing each costs a few milliseconds, so the
canvases (uint8, ink high) are cached, one file per image, under a key made of the image's path, size
and mtime, the preprocessing version and the canvas size. Change ``PREPROCESS_VERSION`` whenever
``siamese.preprocess`` changes its output.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from siamese.datasets import SignatureRecord, load_dataset
from siamese.errors import ImageError
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH, preprocess

PREPROCESS_VERSION = "7"


def _cache_file(cache_dir: Path, path: Path) -> Path:
    """The cache entry of one image file: keyed by its path, size, mtime, the preprocessing version and
    the canvas size."""
    stat = os.stat(path)
    canvas = f"{CANVAS_HEIGHT}x{CANVAS_WIDTH}"
    key = f"{PREPROCESS_VERSION}|{canvas}|{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    return Path(cache_dir) / digest[:2] / f"{digest[2:24]}.npy"


def _preprocess_uint8(path: Path) -> np.ndarray | None:
    """One image as a uint8 canvas (H, W), or None when it is not a usable signature."""
    try:
        return np.round(preprocess(path)[:, :, 0] * 255.0).astype(np.uint8)
    except ImageError:
        return None


def _read_entry(entry: Path) -> np.ndarray | None:
    """A cached canvas; an empty array marks an image preprocessing rejected."""
    canvas = np.load(entry)
    return canvas if canvas.size else None


def _write_entry(entry: Path, canvas: np.ndarray | None) -> None:
    """Store one canvas atomically (an empty array for a rejected image)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    temporary = entry.with_name(entry.stem + f".{os.getpid()}.tmp.npy")
    np.save(temporary, canvas if canvas is not None else np.zeros((0,), dtype=np.uint8))
    os.replace(temporary, entry)


def load_canvases(
    paths: Sequence[Path], cache_dir: Path | None = None, workers: int = 2, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed canvases ``(n, H, W)`` uint8 for ``paths`` and a mask of the usable ones.

    Each image is cached on its own, so any subset or order of files reuses earlier work. An image
    that preprocessing rejects (no ink, unreadable) gets an all-zero canvas and False.
    """
    results: list[np.ndarray | None] = [None] * len(paths)
    missing = list(range(len(paths)))
    entries: list[Path] = []
    if cache_dir is not None:
        entries = [_cache_file(cache_dir, path) for path in paths]
        missing = [i for i, entry in enumerate(entries) if not entry.is_file()]
        for index in set(range(len(paths))) - set(missing):
            results[index] = _read_entry(entries[index])
    todo = [paths[i] for i in missing]
    if workers > 1 and len(todo) > 32:
        chunk = max(1, len(todo) // (workers * 16))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            computed = list(tqdm(pool.map(_preprocess_uint8, todo, chunksize=chunk), total=len(todo),
                                 desc="preprocess", disable=not progress, leave=False))
    else:
        computed = [_preprocess_uint8(path) for path in
                    tqdm(todo, desc="preprocess", disable=not progress or not todo, leave=False)]
    for index, canvas in zip(missing, computed):
        results[index] = canvas
        if cache_dir is not None:
            _write_entry(entries[index], canvas)
    usable = np.array([result is not None for result in results], dtype=bool)
    canvases = np.zeros((len(results), CANVAS_HEIGHT, CANVAS_WIDTH), dtype=np.uint8)
    for index, result in enumerate(results):
        if result is not None:
            canvases[index] = result
    return canvases, usable


def load_writer_canvases(
    data_dirs: Sequence[Path], writers: set[str] | None = None, cache_dir: Path | None = None,
    layout: str | None = None, progress: bool = True,
) -> tuple[list[SignatureRecord], np.ndarray, np.ndarray]:
    """The records of ``writers`` (every writer when None) in ``data_dirs``, their canvases and the
    mask of usable ones (see ``load_canvases``)."""
    records = [r for d in data_dirs for r in load_dataset(Path(d), layout)
               if writers is None or r.writer in writers]
    canvases, usable = load_canvases([r.path for r in records], cache_dir, progress=progress)
    return records, canvases, usable


def canvases_to_batch(canvases: np.ndarray) -> np.ndarray:
    """uint8 canvases ``(n, H, W)`` as the float32 network batch ``(n, H, W, 1)`` in [0, 1]."""
    return (canvases.astype(np.float32) / 255.0)[..., None]
