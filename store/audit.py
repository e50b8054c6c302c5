"""Reading the verification audit: filtered listing, counting, streaming for export, and statistics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Select, case, func, select

from store.database import Store
from store.schema import Verification, as_utc

SelectT = TypeVar("SelectT", bound=Select)  # type: ignore[type-arg]
CSV_COLUMNS = ("id", "created_at", "customer_id", "decision", "score", "threshold", "references",
               "best_reference_id", "model_version", "actor", "channel")


@dataclass(frozen=True)
class AuditFilter:
    """Which audit rows to read: a customer ID, a decision, a time range ``[since, until)``."""

    customer_id: str | None = None
    decision: bool | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: SelectT) -> SelectT:
        """``query`` restricted to the matching rows."""
        if self.customer_id:
            query = query.where(Verification.customer_external_id == self.customer_id)
        if self.decision is not None:
            query = query.where(Verification.decision.is_(self.decision))
        if self.since is not None:
            query = query.where(Verification.created_at >= self.since)
        if self.until is not None:
            query = query.where(Verification.created_at < self.until)
        return query


@dataclass(frozen=True)
class AuditEntry:
    """One verification decision as listed (no query hash)."""

    id: int
    created_at: datetime
    customer_id: str
    decision: bool
    score: float
    threshold: float
    reference_count: int
    best_reference_id: int | None
    model_version: str
    actor: str
    channel: str

    @classmethod
    def of(cls, row: Verification) -> AuditEntry:
        """The entry of a ``verifications`` row."""
        return cls(row.id, as_utc(row.created_at), row.customer_external_id, bool(row.decision), row.score,
                   row.threshold, len(row.reference_scores or []), row.best_reference_id,
                   row.model_version, row.actor, row.channel)

    def csv_row(self) -> list[str]:
        """The entry as text cells in the order of :data:`CSV_COLUMNS`."""
        return [str(self.id), self.created_at.isoformat(timespec="seconds"), self.customer_id,
                "accept" if self.decision else "reject", f"{self.score:.6f}", f"{self.threshold:.6f}",
                str(self.reference_count), str(self.best_reference_id or ""), self.model_version,
                self.actor, self.channel]


def list_verifications(
    store: Store, filters: AuditFilter | None = None, limit: int = 50, offset: int = 0
) -> list[AuditEntry]:
    """Matching audit rows, newest first."""
    query = (filters or AuditFilter()).apply(select(Verification))
    query = query.order_by(Verification.id.desc()).offset(offset).limit(limit)
    with store.sessions() as session:
        return [AuditEntry.of(row) for row in session.scalars(query)]


def count_verifications(store: Store, filters: AuditFilter | None = None) -> int:
    """How many audit rows match."""
    query = (filters or AuditFilter()).apply(select(func.count(Verification.id)))
    with store.sessions() as session:
        return int(session.scalar(query) or 0)


def iter_verifications(
    store: Store, filters: AuditFilter | None = None, batch: int = 1000
) -> Iterator[AuditEntry]:
    """Every matching audit row, newest first, read in batches (for exports of any size)."""
    before: int | None = None
    while True:
        query = (filters or AuditFilter()).apply(select(Verification))
        if before is not None:
            query = query.where(Verification.id < before)
        with store.sessions() as session:
            rows = [AuditEntry.of(row) for row in
                    session.scalars(query.order_by(Verification.id.desc()).limit(batch))]
        yield from rows
        if len(rows) < batch:
            return
        before = rows[-1].id


@dataclass(frozen=True)
class VerificationStats:
    """Decisions in a period: counts, accept rate and a histogram of scores over [0, 1]."""

    total: int
    accepted: int
    histogram: list[int] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """Decisions that were not a match."""
        return self.total - self.accepted

    @property
    def accept_rate(self) -> float | None:
        """Accepted / total, None without decisions."""
        return self.accepted / self.total if self.total else None


def verification_stats(store: Store, since: datetime | None = None, bins: int = 10) -> VerificationStats:
    """Counts, accepted decisions and a ``bins``-bucket score histogram of decisions since ``since``."""
    score = Verification.score
    buckets = [
        func.sum(case(((score >= i / bins) & ((score < (i + 1) / bins) if i < bins - 1 else score <= 1.0), 1),
                      else_=0))
        for i in range(bins)
    ]
    accepted = func.sum(case((Verification.decision.is_(True), 1), else_=0))
    query = AuditFilter(since=since).apply(select(func.count(Verification.id), accepted, *buckets))
    with store.sessions() as session:
        total, accepted_count, *counts = session.execute(query).one()
    return VerificationStats(int(total or 0), int(accepted_count or 0), [int(c or 0) for c in counts])
