"""Bulk import of a signature dataset: the first K genuine signatures of every writer become a customer.

Each writer is one enrollment transaction, so an interrupted import leaves every customer either
fully enrolled or absent; a rerun skips customers that exist (idempotent, resumable). The index
file is written every ``settings.index_save_every`` references (as for any enrollment) and at the
end; after a crash the start-up check catches it up from SQL.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from enroll.policy import EnrollmentWarning
from enroll.service import enroll_signatures
from siamese.errors import SigverifyError
from store.consistency import save_index
from store.database import Store
from store.schema import CUSTOMER_ID_MAX_LENGTH, Customer

if TYPE_CHECKING:
    from siamese.model import SignatureModel


@dataclass
class ImportReport:
    """Counts of an import run, the writers that failed (customer ID, error code, message) and the
    warnings of the writers that were enrolled (customer ID, warning)."""

    writers: int = 0
    enrolled: int = 0
    skipped: int = 0
    signatures: int = 0
    seconds: float = 0.0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[tuple[str, EnrollmentWarning]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data, with the throughput in signatures per second."""
        rate = self.signatures / self.seconds if self.seconds > 0 else 0.0
        return {"writers": self.writers, "enrolled": self.enrolled, "skipped": self.skipped,
                "signatures": self.signatures, "seconds": round(self.seconds, 3),
                "signatures_per_second": round(rate, 2),
                "failed": [{"customer_id": c, "error": e, "message": m} for c, e, m in self.failed],
                "warnings": [{"customer_id": c, **w.to_dict()} for c, w in self.warnings]}


def customer_id_for(prefix: str, writer: str) -> str:
    """A valid customer ID from a prefix and a dataset's writer label."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{prefix}{writer}").strip("._-") or "writer"
    return cleaned[:CUSTOMER_ID_MAX_LENGTH]


def writers_to_import(root: Path, layout: str | None, references: int) -> dict[str, list[Path]]:
    """Customer label -> the paths of its first ``references`` genuine signatures (natural order)."""
    from siamese.datasets import load_dataset

    genuine: dict[str, list[Path]] = defaultdict(list)
    labels: dict[str, str] = {}
    for record in load_dataset(root, layout):
        if record.genuine:
            genuine[record.writer].append(record.path)
            labels[record.writer] = record.dataset
    return {f"{labels[w]}-{w}": sorted(paths, key=natural_key)[:references]
            for w, paths in sorted(genuine.items(), key=lambda item: natural_key(Path(item[0])))}


def natural_key(path: Path) -> list[object]:
    """Sort key that orders ``s_2`` before ``s_10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", str(path)) if part]


def import_dataset(
    store: Store, model: SignatureModel, root: Path, layout: str | None = None, references: int = 5,
    prefix: str = "", force: bool = False, progress: bool = True,
) -> ImportReport:
    """Enroll every writer of the dataset at ``root`` as customer ``prefix + dataset-writer``."""
    from tqdm import tqdm

    started = time.perf_counter()
    plan = writers_to_import(root, layout, references)
    report = ImportReport(writers=len(plan))
    with store.sessions() as session:
        existing = set(session.scalars(select(Customer.external_id)))
    try:
        bar = tqdm(plan.items(), total=len(plan), unit="writer", disable=not progress, desc="import")
        for writer, paths in bar:
            customer_id = customer_id_for(prefix, writer)
            if customer_id in existing:
                report.skipped += 1
                continue
            try:
                result = enroll_signatures(store, model, customer_id, list(paths), force=force)
            except SigverifyError as error:
                report.failed.append((customer_id, error.code, error.message))
                continue
            report.enrolled += 1
            report.warnings += [(customer_id, warning) for warning in result.warnings]
            report.signatures += len(paths)
    finally:
        save_index(store)
        report.seconds = time.perf_counter() - started
    return report
