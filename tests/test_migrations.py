"""Migrations: applied to an empty database they give exactly the models' schema (SQLite, PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from store.database import make_engine
from store.migrate import alembic_config, schema_differences, upgrade_database
from store.schema import Base
from store.settings import Settings

TABLES = {"customers", "references", "verifications", "users", "api_keys", "login_failures",
          "alembic_version"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings with an empty database and no model (migrations need none)."""
    return Settings(data_dir=tmp_path / "var", database_url=database_url)


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
        with engine.begin() as connection:
            config = alembic_config(settings.database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
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
