"""Alembic from code: ``sigverify db upgrade`` and the schema check the tests run."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from store.database import make_engine
from store.schema import Base
from store.settings import Settings

MIGRATION_LOCK_KEY = 0x5167_7665  # any constant shared by every sigverify process
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
        with _migration_lock(settings), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
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


def schema_differences(engine: Engine) -> list[Any]:
    """What autogenerate would change to make the database match the models (empty when equal)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, Base.metadata))
