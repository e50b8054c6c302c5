"""Alembic environment: the target is ``store.schema.Base.metadata``; batch mode for SQLite."""

from __future__ import annotations

from alembic import context

from store.database import make_engine
from store.schema import Base
from store.settings import Settings

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection) -> None:  # type: ignore[no-untyped-def]
    """Run the migrations on an open connection, in one transaction."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the database given by the caller (``sigverify db upgrade``) or by Settings."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = config.attributes.get("database_url") or Settings.from_env().database_url
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _configure_and_run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
