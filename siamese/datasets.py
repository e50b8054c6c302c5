"""Dataset loaders: CEDAR, BHSig260, ICDAR SigComp/Kaggle and a generic ``manifest.csv``.

Every loader returns :class:`SignatureRecord` rows. A writer is named ``"<dataset>/<id>"`` where
``dataset`` is the root folder's name, so writers of two datasets never collide. Exact duplicate
files (same bytes) are dropped, keeping the first in path order; BHSig260 Bengali ships ~1,000.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siamese.errors import SigverifyError

LAYOUTS = ("cedar", "bhsig", "sigcomp", "manifest")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"})
MANIFEST = "manifest.csv"
GENUINE_LABELS = frozenset({"genuine", "g", "1", "true", "real", "original", "reference"})
FORGERY_LABELS = frozenset({"forgery", "forged", "f", "0", "false", "fake", "skilled"})

CEDAR_PATTERN = re.compile(r"^(original|forgeries)_(\d+)_\d+$", re.IGNORECASE)
BHSIG_PATTERN = re.compile(r"^[A-Z]-S-(\d+)-([GF])-\d+$", re.IGNORECASE)
SIGCOMP_FOLDER = re.compile(r"^(\d+)(_forg)?$", re.IGNORECASE)


class DatasetError(SigverifyError):
    """A dataset folder cannot be read: wrong layout, bad manifest, missing files."""

    code = "invalid_dataset"
    http_status = 422


class UnknownLayoutError(DatasetError):
    """The folder matches none of the known layouts."""

    code = "unknown_layout"


@dataclass(frozen=True)
class SignatureRecord:
    """One signature image of a dataset."""

    path: Path
    writer: str
    genuine: bool
    dataset: str


def _images(folder: Path) -> Iterator[Path]:
    """Image files directly inside ``folder``, in name order."""
    return (p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _load_cedar(root: Path, dataset: str) -> Iterator[SignatureRecord]:
    for folder in ("full_org", "full_forg"):
        if not (root / folder).is_dir():
            continue
        for path in _images(root / folder):
            match = CEDAR_PATTERN.match(path.stem)
            if match:
                yield SignatureRecord(path, f"{dataset}/{match[2]}", match[1].lower() == "original", dataset)


def _load_bhsig(root: Path, dataset: str) -> Iterator[SignatureRecord]:
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in _images(folder):
            match = BHSIG_PATTERN.match(path.stem)
            if match:
                yield SignatureRecord(path, f"{dataset}/{folder.name}", match[2].upper() == "G", dataset)


def _load_sigcomp(root: Path, dataset: str) -> Iterator[SignatureRecord]:
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        match = SIGCOMP_FOLDER.match(folder.name)
        if match:
            for path in _images(folder):
                yield SignatureRecord(path, f"{dataset}/{match[1]}", match[2] is None, dataset)


def _parse_label(value: str, line: int) -> bool:
    """True for a genuine label, False for a forgery; DatasetError otherwise."""
    label = value.strip().lower()
    if label in GENUINE_LABELS:
        return True
    if label in FORGERY_LABELS:
        return False
    raise DatasetError(f"{MANIFEST} line {line}: label {value!r} is neither genuine nor forgery")


def _load_manifest(root: Path, dataset: str) -> Iterator[SignatureRecord]:
    with open(root / MANIFEST, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing_columns = {"path", "writer", "label"} - set(reader.fieldnames or [])
        if missing_columns:
            raise DatasetError(f"{MANIFEST} lacks the column(s) {', '.join(sorted(missing_columns))}")
        rows = list(reader)
    missing = []
    for line, row in enumerate(rows, start=2):
        relative, writer = (row["path"] or "").strip(), (row["writer"] or "").strip()
        if not relative or not writer:
            raise DatasetError(f"{MANIFEST} line {line}: empty path or writer")
        path = root / relative
        genuine = _parse_label(row["label"] or "", line)
        if not path.is_file():
            missing.append(relative)
            continue
        yield SignatureRecord(path, f"{dataset}/{writer}", genuine, dataset)
    if missing:
        raise DatasetError(f"{MANIFEST} names {len(missing)} missing file(s), e.g. {', '.join(missing[:3])}")


LOADERS: dict[str, Callable[[Path, str], Iterator[SignatureRecord]]] = {
    "cedar": _load_cedar, "bhsig": _load_bhsig, "sigcomp": _load_sigcomp, "manifest": _load_manifest,
}


def _looks_like(root: Path, layout: str) -> bool:
    """Whether ``root`` has the folder structure of ``layout``."""
    if layout == "cedar":
        return (root / "full_org").is_dir()
    if layout == "manifest":
        return (root / MANIFEST).is_file()
    folders = [p for p in root.iterdir() if p.is_dir()]
    if layout == "bhsig":
        return any(BHSIG_PATTERN.match(path.stem) for folder in folders for path in _images(folder))
    return any(folder.name.lower().endswith("_forg") and SIGCOMP_FOLDER.match(folder.name)
               for folder in folders)


def detect_layout(root: Path) -> str:
    """The first layout of :data:`LAYOUTS` whose structure ``root`` has."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    for layout in LAYOUTS:
        if _looks_like(root, layout):
            return layout
    raise UnknownLayoutError(
        f"{root} matches no known layout (cedar: full_org/; bhsig: W/B-S-W-G-NN.png; "
        f"sigcomp: NNN/ and NNN_forg/; or a {MANIFEST} with path, writer, label)")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_dataset(root: Path, layout: str | None = None) -> list[SignatureRecord]:
    """All signature records under ``root``, exact duplicates dropped.

    Args:
        root: the dataset folder; its name becomes the dataset name.
        layout: one of :data:`LAYOUTS`, or None to detect it.

    Returns:
        Records sorted by writer, genuine first, then path.
    """
    root = Path(root)
    if layout is None:
        layout = detect_layout(root)
    elif layout not in LOADERS:
        raise DatasetError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    elif not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    dataset = root.resolve().name
    seen: set[str] = set()
    records = []
    for record in sorted(LOADERS[layout](root, dataset), key=lambda r: str(r.path)):
        digest = _digest(record.path)
        if digest not in seen:
            seen.add(digest)
            records.append(record)
    if not records:
        raise DatasetError(f"no signature images found in {root} ({layout} layout)")
    return sorted(records, key=lambda r: (r.writer, not r.genuine, str(r.path)))


def split_writers(
    writers: list[str], seed: int = 1234, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
) -> dict[str, list[str]]:
    """A seeded, writer-disjoint train/validation/test split (validation gets at least one writer)."""
    shuffled = sorted(writers)
    np.random.default_rng(seed).shuffle(shuffled)
    train_end = round(len(shuffled) * fractions[0])
    validation_end = train_end + max(1, round(len(shuffled) * fractions[1]))
    return {"train": shuffled[:train_end], "validation": shuffled[train_end:validation_end],
            "test": shuffled[validation_end:]}
