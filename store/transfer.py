"""Copying every row of one sigverify database into another, e.g. from SQLite to PostgreSQL.

The target is migrated to the current schema and must be empty. Rows keep their ids, so the FAISS
index files (keyed by reference id) stay valid; on PostgreSQL the id sequences are moved past the
copied ids so new rows do not collide. Stop the servers first: the copy is a snapshot of the moment.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Table, func, select, text

from store.database import make_engine
from store.errors import DatabaseNotEmptyError
from store.migrate import upgrade_database
from store.schema import Base
from store.settings import Settings

COPY_BATCH = 500


def copy_database(source: Settings, target_url: str) -> dict[str, int]:
    """Copy all rows of ``source``'s database into the empty database at ``target_url``.

    Returns the number of rows copied per table.

    Raises:
        DatabaseNotEmptyError: a table of the target already has rows.
    """
    upgrade_database(source)
    upgrade_database(source.with_overrides(database_url=target_url))
    source_engine, target_engine = make_engine(source.database_url), make_engine(target_url)
    try:
        with source_engine.connect() as reading, target_engine.begin() as writing:
            occupied = [table.name for table in Base.metadata.sorted_tables if _count(writing, table)]
            if occupied:
                raise DatabaseNotEmptyError(f"the target database already has rows in {', '.join(occupied)}")
            tables = Base.metadata.sorted_tables
            copied = {table.name: _copy_table(reading, writing, table) for table in tables}
            if writing.dialect.name == "postgresql":
                _move_sequences(writing)
    finally:
        source_engine.dispose()
        target_engine.dispose()
    return copied


def _count(connection: Connection, table: Table) -> int:
    """Rows in ``table``."""
    return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def _copy_table(reading: Connection, writing: Connection, table: Table) -> int:
    """Copy ``table`` in primary-key order, in batches; returns the row count."""
    result = reading.execution_options(yield_per=COPY_BATCH).execute(
        select(table).order_by(*table.primary_key.columns)
    )
    total = 0
    for rows in result.partitions():
        writing.execute(table.insert(), [_portable(dict(row._mapping)) for row in rows])
        total += len(rows)
    return total


def _portable(row: dict[str, Any]) -> dict[str, Any]:
    """Naive times (SQLite keeps UTC without a zone) become aware UTC times."""
    return {name: value.replace(tzinfo=timezone.utc) if isinstance(value, datetime) and value.tzinfo is None
            else value for name, value in row.items()}


def _move_sequences(writing: Connection) -> None:
    """Set each PostgreSQL id sequence to the largest copied id, so the next insert gets a new one."""
    quote = writing.dialect.identifier_preparer.quote
    for table in Base.metadata.sorted_tables:
        if "id" not in table.columns:
            continue
        name = quote(table.name)
        writing.execute(text(
            f"SELECT setval(pg_get_serial_sequence(:table, 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) "
            f"FROM {name}"
        ), {"table": name})
