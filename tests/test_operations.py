"""The operations guide (docs/operations.md): its commands exist, ``db copy`` moves a database, and
``users set-password`` resets a password."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from enroll.service import enroll_signatures
from store.consistency import sync_index
from store.database import Store
from store.errors import DatabaseNotEmptyError
from store.migrate import upgrade_database
from store.schema import Base, Reference, as_utc
from store.settings import Settings
from store.transfer import copy_database
from store.users import find_credentials
from tests.conftest import REPO_ROOT, signature_png
from tests.web import add_user
from verify.service import verify_signature
from webapp.cli import main

GUIDE = REPO_ROOT / "docs" / "operations.md"
GLOBAL_OPTIONS = {"--data-dir", "--database-url", "--model"}


def documented_commands() -> list[list[str]]:
    """The ``sigverify ...`` lines inside the guide's code blocks, split into words."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", GUIDE.read_text(), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    found = [line for line in lines if re.search(r"(^|\s)sigverify ", line)]
    return [["sigverify", *shlex.split(line.split("sigverify ", 1)[1])] for line in found]


def resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The click command the words name, and the options they pass to it."""
    command: click.Command = main
    options: list[str] = []
    skip = False
    for word in words[1:]:
        if skip:
            skip = False
        elif word in GLOBAL_OPTIONS and command is main:
            skip = True
        elif isinstance(command, click.Group) and word in command.commands:
            command = command.commands[word]
        elif word.startswith("--"):
            options.append(word.split("=")[0])
    return command, options


def test_every_command_in_the_operations_guide_exists():
    commands = documented_commands()
    assert len(commands) >= 8, commands
    for words in commands:
        command, options = resolve(words)
        assert not isinstance(command, click.Group), f"{' '.join(words)}: names no command"
        known = {name for param in command.params for name in param.opts}
        assert set(options) <= known, f"{' '.join(words)}: unknown options {set(options) - known}"
        assert CliRunner().invoke(main, [*words[1:words.index(command.name) + 1], "--help"]).exit_code == 0


def test_readme_links_the_operations_guide():
    assert "(docs/operations.md)" in (REPO_ROOT / "README.md").read_text()


def row_counts(store: Store) -> dict[str, int]:
    """Rows per table."""
    with store.sessions() as session:
        return {table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
                for table in Base.metadata.sorted_tables}


def test_db_copy_moves_everything_and_new_rows_follow(
    tmp_path: Path, fake_model_file: Path, fake_model, database_url: str
):  # type: ignore[no-untyped-def]
    source_settings = Settings(data_dir=tmp_path / "source", model_path=fake_model_file)  # SQLite
    upgrade_database(source_settings)
    (tmp_path / "var").mkdir(exist_ok=True)  # where the target SQLite file goes
    with Store(source_settings) as source:
        sync_index(source, fake_model.version)
        for writer in (1, 2):
            enroll_signatures(source, fake_model, f"c{writer}", [signature_png(writer, s) for s in range(3)])
        verify_signature(source, fake_model, "c1", signature_png(1, 7))
        add_user(source, "olga", "admin")
        expected_counts, expected_rows = row_counts(source), reference_rows(source)
    result = CliRunner().invoke(main, ["--data-dir", str(source_settings.data_dir),
                                       "db", "copy", database_url])
    assert result.exit_code == 0, result.output
    assert "references: 6 rows" in result.output and "verifications: 1 rows" in result.output

    target_settings = Settings(data_dir=tmp_path / "target", database_url=database_url,
                               model_path=fake_model_file)
    with Store(target_settings) as target:
        assert row_counts(target) == expected_counts
        assert reference_rows(target) == expected_rows
        assert sync_index(target, fake_model.version).count == 6
        assert verify_signature(target, fake_model, "c2", signature_png(2, 7)).match
        added = enroll_signatures(target, fake_model, "c3", [signature_png(3, 0)])  # ids do not collide
        assert added.reference_ids[0] > max(row[0] for row in expected_rows)
    with pytest.raises(DatabaseNotEmptyError):
        copy_database(source_settings, database_url)


def reference_rows(store: Store) -> list[tuple[object, ...]]:
    """Id, sha256, embedding and creation time (as UTC) of every reference."""
    with store.sessions() as session:
        columns = (Reference.id, Reference.sha256, Reference.embedding, Reference.created_at)
        rows = session.execute(select(*columns).order_by(Reference.id)).all()
    return [(row[0], row[1], row[2], as_utc(row[3])) for row in rows]


def test_users_set_password(runner, web_settings: Settings):  # type: ignore[no-untyped-def]
    created = runner("users", "create", "olga", "--role", "admin", "--password", "first-password-1")
    assert created.exit_code == 0
    changed = runner("users", "set-password", "olga", input="second-password-2\nsecond-password-2\n")
    assert changed.exit_code == 0 and "password of olga changed" in changed.stdout
    with Store(web_settings) as store:
        found = find_credentials(store, "olga")
    assert found is not None and check_password_hash(found[1], "second-password-2")
    assert runner("users", "set-password", "nobody", "--password", "long-enough-3").exit_code == 1
    assert runner("users", "set-password", "olga", "--password", "short").exit_code == 2
