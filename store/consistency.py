"""Keeping the FAISS index equal to SQL: start-up check, incremental repair, full rebuild.

The index holds exactly the references whose ``model_version`` is the current model's. It is
compared with SQL by a summary (model version, count, last id, sum of ids); on a difference the
id sets are diffed and repaired; a missing, corrupt or other-version file is rebuilt from SQL.
Writers hold a file lock in the data dir while they repair and save, so two processes never
interleave their writes.

The file is a cache, and writing it costs the whole index (1 GB at 1M references), so it is not
written after every change: only once ``settings.index_save_every`` vectors have been added or
removed since its last write (``store.index_unsaved``), after a rebuild, and when the store is
closed (a clean stop of a server or the end of a command). After a crash the file lags SQL by fewer
than that many changes, and the next start-up check catches up from SQL (the references above the
file's last id).

SQL commits first and the index file after, so a failed index write (read-only or full data dir)
never undoes a commit: the in-memory index stays right, ``store.index_write_failed`` is set (the
health report says ``stale``, ``index_file_not_written``), the failure is logged, and the next
change, close or start-up check writes it again. Only ``rebuild_index``, whose whole job is the
file, fails with ``IndexUnwritableError``.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from store.database import Store, database_unavailable, embedding_from_bytes
from store.errors import IndexCorruptError, IndexUnwritableError
from store.index import IndexSummary, VectorIndex
from store.schema import EMBEDDING_DIM, Reference

FETCH_BATCH = 5000
REPAIR_ROUNDS = 5
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexReport:
    """What a check did: ``ok`` (nothing), ``loaded``, ``repaired`` or ``rebuilt``, and why."""

    action: str
    reason: str
    count: int
    model_version: str

    def describe(self) -> str:
        """One line for the command line."""
        text = f"index {self.action}: {self.count} references, model {self.model_version[:12]}"
        return f"{text} ({self.reason})" if self.reason else text


@contextmanager
def index_lock(store: Store) -> Iterator[None]:
    """An exclusive lock on the index files of this data dir (across processes).

    When the lock file cannot be created (read-only data dir) nobody can write the index files
    either, so the work goes on without the lock; saving then fails and is reported as such.
    """
    lock_path = store.settings.index_path.with_name(store.settings.index_path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+b")  # noqa: SIM115 (closed below, after the lock is released)
    except OSError as error:
        log.warning("cannot open the index lock file %s (%s): going on without it", lock_path, error)
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sql_summary(store: Store, model_version: str) -> IndexSummary:
    """Count, last id and id sum of the references of ``model_version`` in SQL."""
    with store.sessions() as session:
        count, last, total = session.execute(
            select(func.count(Reference.id), func.max(Reference.id), func.sum(Reference.id))
            .where(Reference.model_version == model_version)
        ).one()
    return IndexSummary(model_version, int(count or 0), int(last or 0), int(total or 0))


def references_of_other_models(store: Store, model_version: str) -> int:
    """How many references in SQL were embedded by another model than ``model_version``.

    They cannot be compared with the current model's embeddings: their customers answer
    ``model_version_mismatch`` until ``sigverify reindex`` re-embeds them.
    """
    with store.sessions() as session:
        # The two ends of the model_version index answer the usual case (one version) without a scan.
        lowest, highest = session.execute(
            select(func.min(Reference.model_version), func.max(Reference.model_version))).one()
        if lowest is None or lowest == highest == model_version:
            return 0
        others = select(func.count(Reference.id)).where(Reference.model_version != model_version)
        return int(session.scalar(others) or 0)


def latest_model_version(store: Store) -> str | None:
    """The model version of the newest reference in SQL, or None when there is none."""
    with store.sessions() as session:
        return session.scalar(select(Reference.model_version).order_by(Reference.id.desc()).limit(1))


def sync_index(store: Store, model_version: str | None) -> IndexReport:
    """Make ``store.index`` equal SQL for ``model_version`` (loading or rebuilding it).

    The file is written after a rebuild, else only when a save is due (see the module docstring).

    ``model_version`` None means: the version of the index file, else of the newest reference.
    """
    settings = store.settings
    with index_lock(store):
        reason = ""
        action = "ok"
        if store.index is None:
            try:
                store.index = VectorIndex.load(settings.index_path, settings.index_meta_path,
                                               settings.index_nprobe)
                action = "loaded"
            except IndexCorruptError as error:
                reason = "missing" if not settings.index_path.exists() else error.message
        version = model_version or (store.index.model_version if store.index else None)
        version = version or latest_model_version(store) or "none"
        if store.index is None or store.index.model_version != version:
            if store.index is not None:
                reason = f"index of model {store.index.model_version[:12]}, current {version[:12]}"
            report = _rebuild_locked(store, version, reason or "no index")
        else:
            report = _repair_locked(store, store.index, action)
        current = store.index
        if current is not None and current.kind == "flat" and len(current) >= max(settings.ivf_min_size, 1):
            report = _rebuild_locked(store, version, f"{len(current)} references: switching to IVF")
        if report.action == "rebuilt" or _save_due(store, changed=report.action == "repaired"):
            _save_or_mark_stale(store)
        return report


def rebuild_index(store: Store, model_version: str, reason: str = "requested") -> IndexReport:
    """Build the index from SQL from scratch and save it."""
    with index_lock(store):
        report = _rebuild_locked(store, model_version, reason)
        _save_locked(store)
        return report


def index_changed(store: Store, count: int, save: bool = True) -> None:
    """Count ``count`` vectors just added to or removed from ``store.index`` (after their SQL commit)
    and write the file when that is due; ``save`` False leaves the writing to the caller."""
    store.index_unsaved += count
    if save and _save_due(store, changed=count > 0):
        save_index(store)


def _save_due(store: Store, changed: bool) -> bool:
    """Whether to write the file now: enough unsaved changes, or a change after a failed write."""
    enough = store.index_unsaved >= max(store.settings.index_save_every, 1)
    return enough or (changed and store.index_write_failed)


def save_index(store: Store) -> None:
    """Write the index file now if it lacks changes of the in-memory index (or its last write failed),
    first catching up with other writers in SQL.

    Called after a commit, so a write failure is logged and leaves the file marked unwritten instead
    of failing the request whose rows are already committed.
    """
    if store.index is not None and (store.index_unsaved or store.index_write_failed):
        with index_lock(store):
            _repair_locked(store, store.index, "ok")
            _save_or_mark_stale(store)


def save_index_at_close(store: Store) -> None:
    """:func:`save_index` for a store being closed; with the database unreachable, write the index
    this process has without catching up (the next start does that)."""
    try:
        save_index(store)
    except DBAPIError as error:
        unavailable = database_unavailable(error)
        if unavailable is None or store.index is None:
            raise
        log.warning("database unavailable at close (%s): writing the index without catching up",
                    unavailable.detail)
        with index_lock(store):
            _save_or_mark_stale(store)


def _save_or_mark_stale(store: Store) -> None:
    """Save; on a write failure log it and set ``index_write_failed`` so a later save retries."""
    try:
        _save_locked(store)
    except IndexUnwritableError as error:
        log.warning("%s; the index stays in memory and is written again at the next change, close or "
                    "start", error.message)


def _save_locked(store: Store) -> None:
    """Write the index files; raises IndexUnwritableError when the data dir refuses them."""
    assert store.index is not None
    path = store.settings.index_path
    try:
        store.index.save(path, store.settings.index_meta_path)
    except OSError as error:
        store.index_write_failed = True
        reason = error.strerror or str(error)
        raise IndexUnwritableError(f"cannot write the index file {path}: {reason}") from error
    store.index_unsaved = 0
    store.index_write_failed = False


def _rebuild_locked(store: Store, model_version: str, reason: str) -> IndexReport:
    ids, vectors = _load_vectors(store, model_version)
    store.index = VectorIndex.build(EMBEDDING_DIM, model_version, ids, vectors,
                                    store.settings.ivf_min_size, store.settings.index_nprobe)
    store.index_unsaved = len(ids)  # the callers write the file right away
    return IndexReport("rebuilt", reason, len(ids), model_version)


def _repair_locked(store: Store, index: VectorIndex, action: str) -> IndexReport:
    """Bring the index up to SQL: add the references newer than its last id (the usual case, another
    process enrolled), else diff every id; a few rounds while other processes keep writing, then a
    rebuild."""
    version = index.model_version
    added = removed = 0
    for _ in range(REPAIR_ROUNDS):
        expected = sql_summary(store, version)
        if index.summary() == expected:
            if added or removed:
                return IndexReport("repaired", f"added {added}, removed {removed}", len(index), version)
            return IndexReport(action, "", expected.count, version)
        ids, vectors = _load_vectors(store, version, after=index.summary().last_id)
        index.add(ids, vectors)
        added += len(ids)
        store.index_unsaved += len(ids)
        if index.summary() != sql_summary(store, version):  # deletions, or ids committed out of order
            missing, extra = _diff_with_sql(store, index)
            added, removed = added + missing, removed + extra
            store.index_unsaved += missing + extra
    return _rebuild_locked(store, version, "SQL kept changing during the repair")


def _diff_with_sql(store: Store, index: VectorIndex) -> tuple[int, int]:
    """Add the ids SQL has and the index lacks, drop the ones it no longer has; returns both counts."""
    version = index.model_version
    with store.sessions() as session:
        sql_ids = np.fromiter(
            session.scalars(select(Reference.id).where(Reference.model_version == version)),
            dtype=np.int64,
        )
    present = index.ids()
    missing = np.setdiff1d(sql_ids, present)
    extra = np.setdiff1d(present, sql_ids)
    index.remove(extra)
    if len(missing):
        index.add(*_load_vectors(store, version, missing))
    return len(missing), len(extra)


def _load_vectors(
    store: Store, model_version: str, only_ids: np.ndarray | None = None, after: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Ids and embeddings of the references of ``model_version`` (optionally only ``only_ids``, or
    only those with an id above ``after``)."""
    ids: list[int] = []
    vectors: list[np.ndarray] = []
    wanted = None if only_ids is None else [int(i) for i in only_ids]
    chunks = [None] if wanted is None else [
        wanted[start : start + FETCH_BATCH] for start in range(0, len(wanted), FETCH_BATCH)
    ]
    with store.sessions() as session:
        for chunk in chunks:
            query = select(Reference.id, Reference.embedding).where(
                Reference.model_version == model_version
            )
            if chunk is not None:
                query = query.where(Reference.id.in_(chunk))
            if after is not None:
                query = query.where(Reference.id > after)
            for row_id, data in session.execute(query.order_by(Reference.id)):
                ids.append(int(row_id))
                vectors.append(embedding_from_bytes(data))
    matrix = np.stack(vectors) if vectors else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.asarray(ids, dtype=np.int64), matrix


def index_health(store: Store, model_version: str) -> dict[str, object]:
    """Model version, index size and SQL reference count of that version, and whether they agree.

    ``consistent`` is false also when the last write of the index file failed or when references of
    another model wait for ``sigverify reindex``; ``stale_reason`` tells them apart:
    ``index_out_of_step`` (this process's index differs from SQL), ``index_file_not_written`` (the
    index is right, writing its file failed), ``references_need_reindex`` (``other_model_references``
    references were embedded by another model, so their customers cannot be verified), or None when
    consistent. ``unsaved_changes`` counts the vectors the file lacks: a write deferred on purpose
    (until ``index_save_every`` of them) is not stale.
    """
    expected = sql_summary(store, model_version)
    others = references_of_other_models(store, model_version)
    index = store.index
    size = len(index) if index is not None else 0
    in_step = index is not None and index.model_version == model_version and index.summary() == expected
    reason = ("index_out_of_step" if not in_step
              else "index_file_not_written" if store.index_write_failed
              else "references_need_reindex" if others else None)
    return {"model_version": model_version, "index_size": size, "sql_references": expected.count,
            "other_model_references": others, "consistent": reason is None, "stale_reason": reason,
            "unsaved_changes": store.index_unsaved}
