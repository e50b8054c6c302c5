"""Alembic from code: ``sigverify db upgrade`` and the schema check the tests run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from store.database import make_engine
from store.schema import Base
from store.settings import Settings

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
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if own_engine:
            engine.dispose()


def schema_differences(engine: Engine) -> list[Any]:
    """What autogenerate would change to make the database match the models (empty when equal)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, Base.metadata))
