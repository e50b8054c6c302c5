"""Engine, sessions and the Store: one SQL database plus the FAISS cache of its reference vectors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from store.errors import DatabaseUnavailableError
from store.index import VectorIndex
from store.schema import EMBEDDING_DIM
from store.settings import Settings


def make_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; SQLite gets foreign keys, WAL and a busy timeout."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(database_url, pool_pre_ping=True)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Enforce foreign keys (ON DELETE CASCADE) and let readers run beside one writer."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# PostgreSQL SQLSTATEs that mean "the server is not there": connection exceptions (class 08), and
# admin shutdown, crash shutdown, cannot connect now, too many connections, disk full.
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "53100")
# SQLite errors that come from the file system or another process's lock, not from the SQL.
UNAVAILABLE_SQLITE_MESSAGES = ("unable to open database file", "database is locked", "disk i/o error",
                               "database or disk is full", "attempt to write a readonly database")


def database_unavailable(error: BaseException) -> DatabaseUnavailableError | None:
    """The DatabaseUnavailableError that ``error`` stands for, or None when it is any other error.

    Only a lost or refused connection (or a full, locked or unreadable SQLite file) counts: a
    malformed query or a constraint violation is a bug or a conflict, never "unavailable".
    """
    if not isinstance(error, DBAPIError):
        return None
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    unavailable = (
        error.connection_invalidated
        or (type(original).__module__.startswith("psycopg") and type(original).__name__ == "OperationalError"
            and sqlstate is None)
        or (isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATES))
        or (type(original).__module__ == "sqlite3"
            and str(original).lower().startswith(UNAVAILABLE_SQLITE_MESSAGES))
    )
    if not unavailable:
        return None
    found = DatabaseUnavailableError("The database is not available; retry in a moment.")
    found.detail = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    return found


def embedding_to_bytes(vector: np.ndarray) -> bytes:
    """A 256-d embedding as 1024 little-endian float32 bytes."""
    array = np.asarray(vector, dtype="<f4").reshape(-1)
    if array.shape != (EMBEDDING_DIM,):
        raise ValueError(f"an embedding has {EMBEDDING_DIM} values, got {array.size}")
    return array.tobytes()


def embedding_from_bytes(data: bytes) -> np.ndarray:
    """The float32 vector stored by :func:`embedding_to_bytes`."""
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


class Store:
    """The SQL database (the truth) and the in-memory FAISS index derived from it.

    The index is loaded, checked and repaired by ``store.consistency.sync_index``. Its file lags the
    in-memory index by ``index_unsaved`` added or removed vectors (written every
    ``settings.index_save_every`` of them and at :meth:`close`); ``index_write_failed`` says the last
    attempt to write it failed.
    """

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = engine if engine is not None else make_engine(settings.database_url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.index: VectorIndex | None = None
        self.index_unsaved = 0
        self.index_write_failed = False

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed at the end of the block, or rolled back on error.

        On SQLite the transaction takes the write lock at once (``BEGIN IMMEDIATE``), so two
        processes that read and then write wait for each other instead of failing.
        """
        with self.sessions() as session, session.begin():
            if self.engine.dialect.name == "sqlite":
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield session

    def close(self) -> None:
        """Write the index changes its file lacks (a clean stop), then release the engine's connections."""
        try:
            if self.index_unsaved or self.index_write_failed:
                from store.consistency import save_index_at_close  # it imports this module

                save_index_at_close(self)
        finally:
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
