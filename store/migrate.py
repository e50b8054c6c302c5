"""Alembic from code: ``sigverify db upgrade`` and the schema check the tests run."""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, text

from store.database import make_engine
from store.schema import Base
from store.settings import Settings

MIGRATION_LOCK_KEY = 0x5167_7665  # any constant shared by every sigverify process
log = logging.getLogger(__name__)
MIGRATION_LOCK_POLL_SECONDS = 0.2
MIGRATION_LOCK_NOTICE_SECONDS = 10.0  # how often a process waiting for the migration lock says so
ALEMBIC_INI = Path(__file__).resolve().parent.parent / "migrations" / "alembic.ini"


def alembic_config(database_url: str) -> Config:
    """The Alembic configuration of sigverify, pointed at ``database_url``."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    return config


def upgrade_database(settings: Settings, revision: str = "head", engine: Engine | None = None) -> None:
    """Apply the migrations up to ``revision`` to the database of ``settings``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = alembic_config(settings.database_url)
    own_engine = engine is None
    engine = engine if engine is not None else make_engine(settings.database_url)
    try:
        with _migration_lock(settings), _migration_connection(engine) as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if own_engine:
            engine.dispose()


@contextmanager
def _migration_lock(settings: Settings) -> Iterator[None]:
    """One migrating process per data dir at a time (PostgreSQL also takes an advisory lock)."""
    with open(settings.data_dir / "migrate.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """The connection to migrate on: SQLite's in one transaction; PostgreSQL's outside any transaction.

    On PostgreSQL each migration commits on its own (0005 builds indexes CONCURRENTLY, which cannot
    run in a transaction), so the advisory lock is held by the session, not by a transaction.
    """
    if engine.dialect.name != "postgresql":
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        _take_advisory_lock(connection)
        try:
            yield connection
        finally:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()


def _take_advisory_lock(connection: Connection) -> None:
    """Wait for the PostgreSQL migration lock, polling without holding a transaction in between.

    A session blocked in ``pg_advisory_lock`` holds a snapshot, which the migrating session's
    ``CREATE INDEX CONCURRENTLY`` would wait for: a deadlock that PostgreSQL resolves by cancelling one.
    """
    query = text("SELECT pg_try_advisory_lock(:key)")
    started = time.monotonic()
    next_notice = started + MIGRATION_LOCK_NOTICE_SECONDS
    while not connection.execute(query, {"key": MIGRATION_LOCK_KEY}).scalar():
        connection.rollback()
        if time.monotonic() >= next_notice:  # say why start-up is not going on
            log.warning("waiting %.0f s for the migration lock (pg_advisory_lock key %d): another process "
                        "is migrating, or holds the lock", time.monotonic() - started, MIGRATION_LOCK_KEY)
            next_notice += MIGRATION_LOCK_NOTICE_SECONDS
        time.sleep(MIGRATION_LOCK_POLL_SECONDS)
    connection.commit()


def schema_differences(engine: Engine) -> list[Any]:
    """What autogenerate would change to make the database match the models (empty when equal)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, Base.metadata))
