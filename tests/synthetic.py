"""Small synthetic signatures for tests: each writer has a stroke template, forgeries distort it.

Nothing here reads ../shared; every image is drawn from seeds, so tests are deterministic.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def _template(writer: int) -> list[np.ndarray]:
    """A writer's signature: 2-3 smooth strokes of control points in a unit box."""
    rng = np.random.default_rng(1000 + writer)
    strokes = []
    for index in range(int(rng.integers(2, 4))):
        count = int(rng.integers(5, 9))
        xs = np.sort(rng.uniform(0.05, 0.95, count)) * 0.5 + index * 0.25
        ys = rng.uniform(0.15, 0.85, count)
        strokes.append(np.stack([xs, ys], axis=1))
    return strokes


def synthetic_signature(
    writer: int,
    sample: int,
    forgery: bool = False,
    size: tuple[int, int] = (320, 140),
    background: int = 255,
    ink: int = 20,
) -> Image.Image:
    """Draw sample ``sample`` of ``writer`` (a skilled forgery of it when ``forgery``) as mode L."""
    rng = np.random.default_rng(hash((writer, sample, forgery)) % (2**32))
    jitter = 0.05 if forgery else 0.012
    width, height = size
    image = Image.new("L", size, background)
    draw = ImageDraw.Draw(image)
    slant = rng.normal(0, 0.08 if forgery else 0.02)
    for stroke in _template(writer):
        points = stroke + rng.normal(0, jitter, stroke.shape)
        points[:, 0] += slant * (points[:, 1] - 0.5)
        dense = _smooth(points)
        pixels = [(float(x * (width - 20) + 10), float(y * (height - 20) + 10)) for x, y in dense]
        draw.line(pixels, fill=ink, width=int(rng.integers(2, 4)) if forgery else 2)
    return image


def _smooth(points: np.ndarray, steps: int = 12) -> np.ndarray:
    """Catmull-Rom-like densification of control points into a smooth polyline."""
    padded = np.vstack([points[:1], points, points[-1:]])
    out = []
    for index in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[index - 1 : index + 3]
        for t in np.linspace(0, 1, steps, endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(
                0.5
                * (
                    2 * p1
                    + (-p0 + p2) * t
                    + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                    + (-p0 + 3 * p1 - 3 * p2 + p3) * t3
                )
            )
    out.append(points[-1])
    return np.asarray(out)


def png_bytes(image: Image.Image) -> bytes:
    """Encode a PIL image as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_cedar_layout(root: Path, writers: int = 4, genuine: int = 5, forgeries: int = 3) -> Path:
    """Write ``full_org/original_W_N.png`` and ``full_forg/forgeries_W_N.png`` under ``root``."""
    (root / "full_org").mkdir(parents=True, exist_ok=True)
    (root / "full_forg").mkdir(parents=True, exist_ok=True)
    for writer in range(1, writers + 1):
        for number in range(1, genuine + 1):
            image = synthetic_signature(writer, number, background=200)
            image.save(root / "full_org" / f"original_{writer}_{number}.png")
        for number in range(1, forgeries + 1):
            image = synthetic_signature(writer, number, forgery=True)
            image.save(root / "full_forg" / f"forgeries_{writer}_{number}.png")
    return root


def write_bhsig_layout(
    root: Path, writers: int = 4, genuine: int = 5, forgeries: int = 3, script: str = "B"
) -> Path:
    """Write the BHSig260 layout ``W/B-S-W-G-NN.png`` / ``W/B-S-W-F-NN.png`` under ``root``."""
    for writer in range(1, writers + 1):
        folder = root / str(writer)
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(1, genuine + 1):
            image = synthetic_signature(100 + writer, number)
            image.save(folder / f"{script}-S-{writer}-G-{number:02d}.png")
        for number in range(1, forgeries + 1):
            image = synthetic_signature(100 + writer, number, forgery=True)
            image.save(folder / f"{script}-S-{writer}-F-{number:02d}.png")
    return root


def write_sigcomp_layout(root: Path, writers: int = 4, genuine: int = 5, forgeries: int = 3) -> Path:
    """Write the ICDAR SigComp/Kaggle layout ``NNN/`` (genuine) and ``NNN_forg/`` under ``root``."""
    for writer in range(1, writers + 1):
        (root / f"{writer:03d}").mkdir(parents=True, exist_ok=True)
        (root / f"{writer:03d}_forg").mkdir(parents=True, exist_ok=True)
        for number in range(1, genuine + 1):
            image = synthetic_signature(200 + writer, number)
            image.save(root / f"{writer:03d}" / f"{writer:03d}_{number:02d}.png")
        for number in range(1, forgeries + 1):
            image = synthetic_signature(200 + writer, number, forgery=True)
            image.save(root / f"{writer:03d}_forg" / f"forg_{writer:03d}_{number:02d}.png")
    return root


def write_manifest_layout(
    root: Path, writers: int = 4, genuine: int = 5, forgeries: int = 3
) -> Path:
    """Write images in a flat folder plus ``manifest.csv`` (path, writer, label, note)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for writer in range(1, writers + 1):
        for number in range(1, genuine + forgeries + 1):
            forged = number > genuine
            image = synthetic_signature(300 + writer, number, forgery=forged)
            name = f"images/w{writer}_{number}.png"
            image.save(root / name)
            rows.append((name, f"writer{writer}", "forgery" if forged else "genuine", "x"))
    with open(root / "manifest.csv", "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["path", "writer", "label", "note"])
        out.writerows(rows)
    return root
