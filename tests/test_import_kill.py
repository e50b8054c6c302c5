"""Reliability: a bulk import killed with SIGKILL and resumed, and two processes enrolling at once.

The subprocesses run the real ``sigverify`` command line (``python -m tests.fake_model``); only the
network is replaced by the fast numpy fake, slowed down per batch so the kills land mid-import.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from store.consistency import sync_index
from store.database import Store
from store.schema import Customer, Reference
from store.settings import Settings
from tests.conftest import REPO_ROOT, write_signature
from tests.fake_model import fake_loader
from tests.synthetic import write_cedar_layout
from webapp.cli import main

WRITERS = 8
REFERENCES = 3
KILL_RUNS = 10


def sigverify_process(settings: Settings, *args: str, delay: float = 0.0) -> subprocess.Popen[bytes]:
    """Start ``sigverify ARGS`` (fake model) in a subprocess."""
    env = {**os.environ, "SIGVERIFY_FAKE_EMBED_SECONDS": str(delay),
           "SIGVERIFY_DATABASE_URL": settings.database_url, "SIGVERIFY_ENROLL_BLOCKING_WARNINGS": ""}
    command = [sys.executable, "-m", "tests.fake_model", "--data-dir", str(settings.data_dir),
               "--model", str(settings.model_path), *args]
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def committed(database: Path) -> dict[str, list[tuple[int, str]]]:
    """Customer ID -> its (reference id, sha256) rows, read with plain sqlite3 (no app code)."""
    try:
        with closing(sqlite3.connect(database, timeout=30)) as connection:
            rows = connection.execute(
                'SELECT c.external_id, r.id, r.sha256 FROM customers c '
                'LEFT JOIN "references" r ON r.customer_id = c.id ORDER BY r.id'
            ).fetchall()
    except sqlite3.OperationalError:
        return {}  # not migrated yet
    found: dict[str, list[tuple[int, str]]] = {}
    for customer, reference_id, sha256 in rows:
        found.setdefault(customer, [])
        if reference_id is not None:
            found[customer].append((reference_id, sha256))
    return found


def index_matches_sql(settings: Settings, model_version: str) -> tuple[str, bool]:
    """Restart: open the store, check the index; returns (action, index ids == SQL ids)."""
    with Store(settings) as store:
        report = sync_index(store, model_version)
        with store.sessions() as session:
            sql_ids = sorted(session.scalars(select(Reference.id)))
        assert store.index is not None
        return report.action, list(store.index.ids()) == sql_ids


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cedar_layout(tmp_path_factory.mktemp("cedar"), writers=WRITERS, genuine=REFERENCES + 1,
                              forgeries=0)


def test_import_killed_at_random_moments_then_resumed(
    tmp_path: Path, dataset: Path, fake_model_file: Path, monkeypatch: pytest.MonkeyPatch
):
    from siamese.model import SignatureModel

    monkeypatch.setattr(SignatureModel, "load", staticmethod(fake_loader()))
    version = SignatureModel.load(fake_model_file).version
    rng = np.random.default_rng(20261124)
    interrupted = 0
    for run in range(KILL_RUNS):
        settings = Settings(data_dir=tmp_path / f"run{run}", model_path=fake_model_file)
        database = settings.data_dir / "sigverify.db"
        args = ("import", str(dataset), "--layout", "cedar", "--references", str(REFERENCES), "--quiet")
        process = sigverify_process(settings, *args, delay=0.12)
        deadline = time.monotonic() + 60
        while process.poll() is None and not committed(database) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0.0, 1.2)))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        before = committed(database)
        interrupted += 0 < len(before) < WRITERS
        assert all(len(rows) == REFERENCES for rows in before.values()), f"run {run}: partial customer"
        action, equal = index_matches_sql(settings, version)
        assert equal, f"run {run}: index differs from SQL after restart ({action})"

        result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "--database-url",
                                           settings.database_url, "--model", str(fake_model_file), *args],
                                    env={"SIGVERIFY_ENROLL_BLOCKING_WARNINGS": ""})
        assert result.exit_code == 0, result.output
        after = committed(database)
        assert len(after) == WRITERS and all(len(rows) == REFERENCES for rows in after.values())
        assert all(after[customer] == rows for customer, rows in before.items()), "committed data lost"
        assert index_matches_sql(settings, version) == ("loaded", True)
    assert interrupted >= KILL_RUNS // 2, f"only {interrupted} kills landed mid-import"


def test_a_second_import_adds_nothing(tmp_path: Path, dataset: Path, fake_model_file: Path):
    settings = Settings(data_dir=tmp_path / "var", model_path=fake_model_file)
    args = ("import", str(dataset), "--references", str(REFERENCES), "--quiet")
    for expected in (f"{WRITERS} enrolled", "0 enrolled"):
        process = sigverify_process(settings, *args)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        assert expected in out.decode()
    assert sum(len(rows) for rows in committed(settings.data_dir / "sigverify.db").values()) == 24


def test_two_processes_enrolling_at_the_same_time(
    tmp_path: Path, fake_settings: Settings, fake_model
):  # type: ignore[no-untyped-def]
    images = tmp_path / "images"
    processes = []
    for number in range(4):
        paths = [str(write_signature(images, number + 1, sample)) for sample in range(3)]
        processes.append(sigverify_process(fake_settings, "enroll", f"cust-{number}", *paths, delay=0.3))
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    with Store(fake_settings) as store:
        report = sync_index(store, fake_model.version)
        with store.sessions() as session:
            customers = sorted(session.scalars(select(Customer.external_id)))
            sql_ids = sorted(session.scalars(select(Reference.id)))
        assert customers == ["cust-0", "cust-1", "cust-2", "cust-3"]
        assert len(sql_ids) == 12
        assert store.index is not None and list(store.index.ids()) == sql_ids
    assert report.action == "loaded", "the last writer left an index file equal to SQL"
