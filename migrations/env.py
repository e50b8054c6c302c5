"""Alembic environment: the target is ``store.schema.Base.metadata``; batch mode for SQLite.

SQLite applies the pending migrations in the caller's transaction when it passes one (store.migrate does).
PostgreSQL applies each migration in a transaction of its own, so that a migration can step out of it
into an autocommit block: ``CREATE INDEX CONCURRENTLY`` cannot run inside a transaction (see 0005).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from store.database import make_engine
from store.schema import Base
from store.settings import Settings

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    """Run the migrations on an open connection (on PostgreSQL, one outside any transaction)."""
    postgresql = connection.dialect.name == "postgresql"
    if postgresql and connection.in_transaction():
        raise RuntimeError("PostgreSQL migrations need a connection outside any transaction: each "
                           "migration commits on its own and some run outside a transaction")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        transaction_per_migration=postgresql,
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
