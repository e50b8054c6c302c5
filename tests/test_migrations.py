"""Migrations: applied to an empty database they give exactly the models' schema (SQLite, PostgreSQL).

Migration 0005 also has tests of its own: on PostgreSQL it builds and drops indexes CONCURRENTLY, and a
rerun copes with what an interrupted build left behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from store.database import make_engine
from store.migrate import MIGRATION_LOCK_KEY, alembic_config, schema_differences, upgrade_database
from store.schema import Base, Customer, Reference
from store.settings import Settings
from tests.conftest import POSTGRES_URL, TEST_DATABASE_ENV

TABLES = {"customers", "references", "verifications", "users", "api_keys", "login_failures",
          "alembic_version"}
CUSTOMER_INDEX = "ix_references_customer_id"
CUSTOMER_MODEL_VERSION_INDEX = "ix_references_customer_id_model_version"

needs_postgresql = pytest.mark.skipif(
    not POSTGRES_URL, reason=f"PostgreSQL only, and {TEST_DATABASE_ENV} is not set (make test sets it)"
)
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings with an empty database and no model (migrations need none)."""
    return Settings(data_dir=tmp_path / "var", database_url=database_url)


def downgrade_database(database_url: str, engine: Engine, revision: str) -> None:
    """Downgrade to ``revision`` on a connection outside any transaction (as PostgreSQL needs)."""
    with engine.connect() as connection:
        config = alembic_config(database_url)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str:
    """The revision the database is at."""
    with engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def customer_indexes(engine: Engine) -> dict[str, bool]:
    """The indexes of references on customer_id, and whether each is valid (always, on SQLite)."""
    if engine.dialect.name != "postgresql":
        names = {index["name"] for index in inspect(engine).get_indexes("references")}
        return {name: True for name in names if name and name.startswith(CUSTOMER_INDEX)}
    query = text("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                 "WHERE i.indrelid = to_regclass('references')")
    with engine.connect() as connection:
        found: dict[str, bool] = {name: valid for name, valid in connection.execute(query)}
    return {name: valid for name, valid in found.items() if name.startswith(CUSTOMER_INDEX)}


@contextmanager
def executed_statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on ``engine`` inside the block, in order."""
    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def index_statements(statements: list[str]) -> list[str]:
    """The CREATE/DROP INDEX statements among ``statements``, up to the table name."""
    stripped = (statement.strip() for statement in statements)
    return [statement.split(" ON ")[0] for statement in stripped
            if statement.startswith(("CREATE INDEX", "DROP INDEX"))]


def test_upgrade_from_empty_matches_the_models(settings: Settings):
    upgrade_database(settings)
    engine = make_engine(settings.database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_returns_to_empty(settings: Settings):
    upgrade_database(settings)
    upgrade_database(settings)
    engine = make_engine(settings.database_url)
    try:
        downgrade_database(settings.database_url, engine, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade_database(settings, engine=engine)
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_an_empty_database_differs_from_the_models(settings: Settings):
    """The comparison is not vacuous: without the migrations every table is reported missing."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        added = {diff[1].name for diff in schema_differences(engine) if diff[0] == "add_table"}
        assert added == set(Base.metadata.tables)
    finally:
        engine.dispose()


def test_0005_swaps_the_customer_index_for_the_composite_one_and_back(settings: Settings):
    engine = make_engine(settings.database_url)
    try:
        upgrade_database(settings, "0004", engine=engine)
        assert customer_indexes(engine) == {CUSTOMER_INDEX: True}
        upgrade_database(settings, engine=engine)
        assert customer_indexes(engine) == {CUSTOMER_MODEL_VERSION_INDEX: True}
        downgrade_database(settings.database_url, engine, "0004")
        assert current_revision(engine) == "0004"
        assert customer_indexes(engine) == {CUSTOMER_INDEX: True}
        upgrade_database(settings, engine=engine)
        assert current_revision(engine) == "0005"
        assert customer_indexes(engine) == {CUSTOMER_MODEL_VERSION_INDEX: True}
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


@needs_postgresql
@on_postgresql
def test_0005_builds_and_drops_its_indexes_concurrently_on_postgresql(settings: Settings):
    engine = make_engine(settings.database_url)
    try:
        upgrade_database(settings, "0004", engine=engine)
        with executed_statements(engine) as statements:
            upgrade_database(settings, engine=engine)
        assert index_statements(statements) == [
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {CUSTOMER_MODEL_VERSION_INDEX}",
            f"DROP INDEX CONCURRENTLY IF EXISTS {CUSTOMER_INDEX}",
        ]
        with executed_statements(engine) as statements:
            downgrade_database(settings.database_url, engine, "0004")
        assert index_statements(statements) == [
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {CUSTOMER_INDEX}",
            f"DROP INDEX CONCURRENTLY IF EXISTS {CUSTOMER_MODEL_VERSION_INDEX}",
        ]
    finally:
        engine.dispose()


@needs_postgresql
@on_postgresql
def test_0005_rerun_replaces_the_invalid_index_of_an_interrupted_build(settings: Settings):
    """An enrollment's open transaction makes the build wait; a statement timeout cancels it and leaves
    an INVALID index, which the next run drops and builds again."""
    url = make_url(settings.database_url)
    options = f"{url.query['options']} -cstatement_timeout=300"
    impatient = make_engine(url.update_query_dict({"options": options}).render_as_string(hide_password=False))
    engine = make_engine(settings.database_url)
    try:
        upgrade_database(settings, "0004", engine=engine)
        with Session(engine) as enrollment:
            enrollment.add(Reference(customer=Customer(external_id="c1"), image_png=b"", sha256="0" * 64,
                                     embedding=bytes(1024), model_version="v1"))
            enrollment.flush()
            with pytest.raises(OperationalError, match="statement timeout"):
                upgrade_database(settings, engine=impatient)
            enrollment.commit()
        assert current_revision(engine) == "0004"
        assert customer_indexes(engine) == {CUSTOMER_INDEX: True, CUSTOMER_MODEL_VERSION_INDEX: False}
        upgrade_database(settings, engine=engine)
        assert current_revision(engine) == "0005"
        assert customer_indexes(engine) == {CUSTOMER_MODEL_VERSION_INDEX: True}
    finally:
        impatient.dispose()
        engine.dispose()


@needs_postgresql
@on_postgresql
def test_0005_rerun_keeps_a_valid_index_built_before_the_run_stopped(settings: Settings):
    engine = make_engine(settings.database_url)
    index_oid = text(f"SELECT to_regclass('{CUSTOMER_MODEL_VERSION_INDEX}')::oid")
    try:
        upgrade_database(settings, "0004", engine=engine)
        with engine.begin() as connection:
            connection.execute(text(f'CREATE INDEX {CUSTOMER_MODEL_VERSION_INDEX} ON "references" '
                                    "(customer_id, model_version)"))
            built = connection.execute(index_oid).scalar_one()
        upgrade_database(settings, engine=engine)
        with engine.connect() as connection:
            assert connection.execute(index_oid).scalar_one() == built
        assert customer_indexes(engine) == {CUSTOMER_MODEL_VERSION_INDEX: True}
    finally:
        engine.dispose()


@needs_postgresql
@on_postgresql
def test_a_waiting_upgrade_is_not_blocked_in_a_lock_wait_on_postgresql(settings: Settings, monkeypatch,
                                                                        caplog):
    """A process waiting for another's migration polls the advisory lock: blocked in a lock wait, its
    statement would hold a snapshot that the other's CREATE INDEX CONCURRENTLY waits for. It says
    that it is waiting."""
    monkeypatch.setattr("store.migrate.MIGRATION_LOCK_NOTICE_SECONDS", 0.3)
    caplog.set_level(logging.WARNING, logger="store.migrate")
    engine = make_engine(settings.database_url)
    backends: list[int] = []
    event.listen(engine, "connect", lambda connection, _record: backends.append(connection.info.backend_pid))
    lock_waits = text("SELECT count(*) FROM pg_stat_activity "
                      "WHERE pid = ANY(:backends) AND wait_event_type = 'Lock'")
    holder = create_engine(settings.database_url, poolclass=NullPool)  # closing a connection ends its session
    try:
        # The holder's session ends (releasing the lock) before the executor waits for the upgrade.
        with ThreadPoolExecutor(1) as executor, holder.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            upgrade = executor.submit(upgrade_database, settings, engine=engine)
            for _ in range(10):
                time.sleep(0.1)
                assert connection.execute(lock_waits, {"backends": backends}).scalar_one() == 0
                connection.commit()
            assert not upgrade.done() and backends
            notices = [r.getMessage() for r in caplog.records]
            assert any("waiting" in m and "migration lock" in m for m in notices), notices
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            upgrade.result(timeout=60)
        assert current_revision(engine) == "0005"
    finally:
        holder.dispose()
        engine.dispose()
