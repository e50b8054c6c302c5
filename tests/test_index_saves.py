"""When the FAISS index file is written: every ``index_save_every`` changes, at a clean close, at the end
of a command, and again after a failed write; a process started after a kill catches up from SQL."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from store.consistency import index_health, save_index, sync_index
from store.customers import delete_customer
from store.database import Store
from store.index import VectorIndex
from store.references import delete_reference
from store.schema import Reference
from store.settings import Settings
from tests.conftest import REPO_ROOT, write_signature
from tests.test_store import enroll_writers, index_equals_sql


def file_ids(settings: Settings) -> list[int]:
    """The reference ids in the index file on disk."""
    return [int(i) for i in VectorIndex.load(settings.index_path, settings.index_meta_path).ids()]


def sql_ids(store: Store) -> list[int]:
    """All reference ids in SQL, sorted."""
    with store.sessions() as session:
        return sorted(session.scalars(select(Reference.id)))


@pytest.fixture
def open_store(fake_settings: Settings, fake_model, new_store) -> Callable[..., Store]:  # type: ignore[no-untyped-def]
    """Open and sync a store on the test's database with other settings (e.g. ``index_save_every``)."""
    from store.migrate import upgrade_database

    upgrade_database(fake_settings)

    def make(**changes: object) -> Store:
        store = new_store(replace(fake_settings, **changes))
        sync_index(store, fake_model.version)
        return store

    return make


def test_the_file_is_written_every_n_changes(open_store, fake_model):  # type: ignore[no-untyped-def]
    store = open_store(index_save_every=7)
    enroll_writers(store, fake_model, range(1, 3))  # 6 changes: not yet
    assert (file_ids(store.settings), store.index_unsaved) == ([], 6)
    enroll_writers(store, fake_model, range(3, 4))  # 9: written
    assert (file_ids(store.settings), store.index_unsaved) == (sql_ids(store), 0)
    delete_customer(store, "cust-1")  # deletions count too
    enroll_writers(store, fake_model, range(4, 5))
    assert len(file_ids(store.settings)) == 9 and store.index_unsaved == 6
    reference = sql_ids(store)[0]
    delete_reference(store, "cust-2", reference)
    assert (file_ids(store.settings), store.index_unsaved) == (sql_ids(store), 0)


def test_save_every_one_writes_after_each_change(open_store, fake_model):  # type: ignore[no-untyped-def]
    store = open_store(index_save_every=1)
    enroll_writers(store, fake_model, range(1, 2))
    assert (file_ids(store.settings), store.index_unsaved) == (sql_ids(store), 0)


def test_a_clean_close_writes_pending_changes(open_store, fake_model, new_store):  # type: ignore[no-untyped-def]
    store = open_store()
    enroll_writers(store, fake_model, range(1, 3))
    delete_customer(store, "cust-1")
    assert file_ids(store.settings) == [] and store.index_unsaved == 9
    store.close()
    assert file_ids(store.settings) == sql_ids(store) and store.index_unsaved == 0
    assert sync_index(new_store(store.settings), fake_model.version).action == "loaded"


def test_a_deferred_save_is_not_stale(open_store, fake_model):  # type: ignore[no-untyped-def]
    store = open_store()
    enroll_writers(store, fake_model, range(1, 3))
    assert index_health(store, fake_model.version) == {
        "model_version": fake_model.version, "index_size": 6, "sql_references": 6,
        "other_model_references": 0, "consistent": True, "stale_reason": None, "unsaved_changes": 6}


def test_a_failed_write_is_reported_and_retried_at_the_next_change(
    open_store, fake_model, caplog: pytest.LogCaptureFixture
):  # type: ignore[no-untyped-def]
    store = open_store()
    enroll_writers(store, fake_model, range(1, 3))
    path = store.settings.index_path
    path.unlink()
    path.mkdir()  # a folder in the file's place: writes fail, even as root
    save_index(store)
    assert "cannot write the index file" in caplog.text
    health = index_health(store, fake_model.version)
    assert (health["consistent"], health["stale_reason"], health["unsaved_changes"]) == (
        False, "index_file_not_written", 6)
    enroll_writers(store, fake_model, range(3, 4))  # committed; the retry fails again
    assert index_health(store, fake_model.version)["stale_reason"] == "index_file_not_written"
    store.close()  # logs the failure, does not raise
    shutil.rmtree(path)
    delete_customer(store, "cust-1")  # one change, far below index_save_every: written at once
    assert index_health(store, fake_model.version)["stale_reason"] is None
    assert (file_ids(store.settings), store.index_unsaved) == (sql_ids(store), 0)


def test_a_store_closed_while_the_database_is_gone_still_writes_its_index(
    open_store, fake_model, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):  # type: ignore[no-untyped-def]
    import sqlite3

    store = open_store()
    enroll_writers(store, fake_model, range(1, 3))
    expected = sql_ids(store)

    def gone(*args: object) -> None:
        raise OperationalError("SELECT", None, sqlite3.OperationalError("unable to open database file"))

    monkeypatch.setattr("store.consistency.sql_summary", gone)
    store.close()
    assert "database unavailable at close" in caplog.text
    assert file_ids(store.settings) == expected


KILLED_WRITER = """
import os, signal, sys
from enroll.service import enroll_signatures
from store.consistency import sync_index
from store.customers import delete_customer
from store.database import Store
from store.settings import Settings
from tests.fake_model import fake_loader

data_dir, url, model_file, *images = sys.argv[1:]
store = Store(Settings(data_dir=data_dir, database_url=url, model_path=model_file))
model = fake_loader()(model_file)
sync_index(store, model.version)
for number, image in enumerate(images):
    enroll_signatures(store, model, f"killed-{number}", [image], force=True)
delete_customer(store, "cust-1")
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("save_every", [1000, 5])
def test_a_process_started_after_a_kill_catches_up_from_sql(
    open_store, fake_model, new_store, fake_model_file: Path, tmp_path: Path, save_every: int
):  # type: ignore[no-untyped-def]
    first = open_store()
    enroll_writers(first, fake_model, range(1, 3))
    first.close()
    written = file_ids(first.settings)
    images = [str(write_signature(tmp_path / "images", writer, 0)) for writer in range(3, 7)]
    settings = first.settings
    command = [sys.executable, "-c", KILLED_WRITER, str(settings.data_dir), settings.database_url,
               str(fake_model_file), *images]
    killed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert file_ids(settings) == written, "the killed process wrote none of its 7 changes"
    restarted = new_store(replace(settings, index_save_every=save_every))
    report = sync_index(restarted, fake_model.version)
    assert (report.action, report.reason) == ("repaired", "added 4, removed 3")
    assert index_equals_sql(restarted) and len(sql_ids(restarted)) == 7
    assert index_health(restarted, fake_model.version)["consistent"] is True
    if save_every > 7:  # the catch-up counts as 7 changes: written at start only when that is due
        assert restarted.index_unsaved == 7 and file_ids(settings) == written
    else:
        assert restarted.index_unsaved == 0 and file_ids(settings) == sql_ids(restarted)
    restarted.close()
    assert file_ids(settings) == sql_ids(restarted)


def test_commands_leave_the_file_equal_to_sql(runner, web_settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    images = [str(write_signature(tmp_path / "images", 1, sample)) for sample in range(3)]
    assert runner("enroll", "alice", *images).exit_code == 0
    assert file_ids(web_settings) == [1, 2, 3]
    assert runner("enroll", "bob", str(write_signature(tmp_path / "images", 2, 0))).exit_code == 0
    assert runner("customers", "delete", "alice", "--yes").exit_code == 0
    assert file_ids(web_settings) == [4]
