"""Faults: the server killed under load, the database gone mid-run, an index file that cannot be written.

Every server here is a real ``sigverify serve`` subprocess with the fast fake model
(``python -m tests.fake_model``, see tests.web.serving); clients talk HTTP to it on loopback. A bulk
import killed mid-run is covered by tests/test_import_kill.py.
"""

from __future__ import annotations

import http.client
import json
import random
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.load_bench import ApiClient
from store.api_keys import create_api_key
from store.database import Store
from store.index import VectorIndex
from store.migrate import upgrade_database
from store.settings import Settings
from tests.conftest import signature_png
from tests.postgres_server import PrivatePostgres, private_postgres_or_skip
from tests.web import add_user, serving

SECRET = "secret-for-fault-tests"
KILL_ROUNDS = 3
CLIENTS = 4
REQUEST_SIZES = (1, 2, 3, 4)


def operator_key(settings: Settings, role: str = "operator") -> str:
    """Migrate the database, create a user of ``role`` (operator) and return a new API key of theirs."""
    upgrade_database(settings)
    with Store(settings) as store:
        user = add_user(store, f"faults-{role}", role)
        return create_api_key(store, user.id, "faults")[1]


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment of a served process on ``settings``'s database; no enrollment warning blocks."""
    return {"SIGVERIFY_DATABASE_URL": settings.database_url, "SIGVERIFY_SECRET_KEY": SECRET,
            "SIGVERIFY_ENROLL_BLOCKING_WARNINGS": "", **extra}


def sql_rows(database: Path) -> tuple[dict[str, list[int]], set[int]]:
    """Customer ID -> reference ids, and the audit row ids, read with plain sqlite3 (no app code)."""
    with closing(sqlite3.connect(database, timeout=30)) as connection:
        rows = connection.execute('SELECT c.external_id, r.id FROM customers c '
                                  'LEFT JOIN "references" r ON r.customer_id = c.id').fetchall()
        audit = {row[0] for row in connection.execute("SELECT id FROM verifications")}
    customers: dict[str, list[int]] = {}
    for customer, reference_id in rows:
        customers.setdefault(customer, [])
        if reference_id is not None:
            customers[customer].append(reference_id)
    return customers, audit


def index_file_ids(settings: Settings) -> list[int]:
    """The reference ids in the index file on disk."""
    return [int(i) for i in VectorIndex.load(settings.index_path, settings.index_meta_path).ids()]


@dataclass
class LoadLog:
    """What the clients sent and what the server confirmed."""

    attempted: dict[str, int] = field(default_factory=dict)  # customer -> images in its one request
    enrolled: dict[str, list[int]] = field(default_factory=dict)  # 201 answers: customer -> reference ids
    verified: list[int] = field(default_factory=list)  # 200 answers: audit row ids
    unanswered: int = 0
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client_loop(url: str, key: str, first_writer: int, log: LoadLog, stop: threading.Event) -> None:
    """Enroll new customers (1-4 new images each) and verify confirmed ones until stopped or cut off."""
    api = ApiClient(url, key, timeout=20)
    rng = random.Random(first_writer)
    for number in range(10_000):
        if stop.is_set():
            break
        with log.lock:
            known = list(log.enrolled)
        try:
            if known and rng.random() < 0.4:
                customer = rng.choice(known)
                status, body = api.verify(customer, signature_png(int(customer.split("-")[1]), 7))
                expected = 200
            else:
                writer = first_writer + number
                customer, size = f"kill-{writer}", rng.choice(REQUEST_SIZES)
                with log.lock:
                    log.attempted[customer] = size
                status, body = api.enroll(customer, [signature_png(writer, s) for s in range(size)])
                expected = 201
        except (OSError, http.client.HTTPException):
            with log.lock:
                log.unanswered += 1
            break  # the server is gone
        with log.lock:
            if status != expected:
                log.unexpected.append(f"{status} {body}")
            elif expected == 201:
                log.enrolled[customer] = body["reference_ids"]
            else:
                log.verified.append(body["verification_id"])
    api.close()


@contextmanager
def client_load(url: str, key: str, round_number: int) -> Iterator[LoadLog]:
    """CLIENTS threads of ``client_loop`` for the duration of the block."""
    log, stop = LoadLog(), threading.Event()
    threads = [threading.Thread(target=client_loop, args=(url, key, (round_number * CLIENTS + n + 1) * 10_000,
                                                          log, stop))
               for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        yield log
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


def check_after_kill(database: Path, log: LoadLog) -> None:
    """No half-enrolled customer, no lost enrollment or audit row the server had confirmed."""
    customers, audit = sql_rows(database)
    for customer, size in log.attempted.items():
        assert len(customers.get(customer, [])) in (0, size), f"{customer}: half enrolled"
    for customer, reference_ids in log.enrolled.items():
        assert sorted(customers.get(customer, [])) == sorted(reference_ids), f"{customer}: lost rows"
    assert set(log.verified) <= audit, "a confirmed verification has no audit row"
    assert not log.unexpected, log.unexpected[:3]


def wait_for(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_server_killed_under_load_then_restarted(tmp_path: Path, fake_model_file: Path):
    settings = Settings(data_dir=tmp_path / "var", model_path=fake_model_file)
    database = settings.data_dir / "sigverify.db"
    key = operator_key(settings)
    # the file is written every 5 changes, so kills also land in the middle of writing it
    env = server_env(settings, SIGVERIFY_FAKE_EMBED_SECONDS="0.03", SIGVERIFY_INDEX_SAVE_EVERY="5")
    rng = random.Random(20261127)
    cut_off = 0
    for round_number in range(KILL_ROUNDS + 1):
        with serving(settings.data_dir, fake_model_file, env, "--threads", "4") as served:
            customers, _ = sql_rows(database)
            expected_ids = sorted(i for ids in customers.values() for i in ids)
            # the file may lag SQL by the changes since its last write (no deletions here: fewer ids)
            assert set(index_file_ids(settings)) <= set(expected_ids), "index file holds ids SQL lacks"
            with ApiClient(served.url, key) as api:
                status, health = api.call("GET", "/health")
            assert status == 200 and health["consistent"], health
            assert health["index_size"] == len(expected_ids), "index differs from SQL after the restart"
            if round_number == KILL_ROUNDS:
                break
            with client_load(served.url, key, round_number) as log:
                wait_for(lambda: len(log.enrolled) >= 2)  # noqa: B023
                time.sleep(rng.uniform(0.2, 1.0))
                served.process.kill()
                served.process.wait(timeout=30)
            cut_off += log.unanswered
            check_after_kill(database, log)
    assert index_file_ids(settings) == expected_ids, "after a clean stop the index file equals SQL"
    assert cut_off >= KILL_ROUNDS, f"only {cut_off} requests were cut off by the kills"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_clean_stop_writes_the_index_file(tmp_path: Path, fake_model_file: Path, workers: str):
    settings = Settings(data_dir=tmp_path / "var", model_path=fake_model_file)
    key = operator_key(settings)
    with (serving(settings.data_dir, fake_model_file, server_env(settings), "--workers", workers) as served,
          ApiClient(served.url, key) as api):
        status, body = api.enroll("stop-1", [signature_png(1, s) for s in range(3)])
        assert status == 201, body
        assert index_file_ids(settings) == [], "written before index_save_every changes"
    assert served.process.returncode == 0, served.lines
    assert index_file_ids(settings) == body["reference_ids"], "SIGTERM stops the server cleanly"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server shared by this module's tests (each makes its own database)."""
    with private_postgres_or_skip() as server:
        yield server


def test_database_goes_away_and_comes_back(tmp_path: Path, fake_model_file: Path, postgres: PrivatePostgres):
    url = postgres.new_database("served")
    settings = Settings(data_dir=tmp_path / "var", database_url=url, model_path=fake_model_file)
    key = operator_key(settings)
    with (serving(settings.data_dir, fake_model_file, server_env(settings), "--threads", "4") as served,
          ApiClient(served.url, key) as api):
        assert api.enroll("db-1", [signature_png(1, s) for s in range(3)])[0] == 201
        assert api.verify("db-1", signature_png(1, 7))[0] == 200
        with verifying_in_background(served.url, key) as background:
            time.sleep(0.3)
            postgres.stop()
            for name in REQUESTS_WHILE_DOWN:
                status, body = request_of_kind(api, served.url, name)
                assert status == 503, f"{name}: {status} {body}"
                assert body["error"] == "database_unavailable" and body["message"], f"{name}: {body}"
            postgres.start()
            assert api.verify("db-1", signature_png(1, 7))[0] == 200, "no recovery without a restart"
        assert served.process.poll() is None, "the server process ended"
        assert api.enroll("db-2", [signature_png(2, s) for s in range(2)])[0] == 201
        assert api.call("GET", "/health")[1]["consistent"]
    outcomes = {outcome for outcome in background if outcome != "200"}
    assert outcomes <= {"503 database_unavailable"}, outcomes
    assert background.count("200") >= 2 and "503 database_unavailable" in background


REQUESTS_WHILE_DOWN = ("verify", "enroll", "identify", "customers", "healthz")


def test_pages_while_the_database_is_away(
    tmp_path: Path, fake_model_file: Path, fake_model, postgres: PrivatePostgres
):  # type: ignore[no-untyped-def]
    from tests.web import WebClient
    from webapp import create_app

    settings = Settings(data_dir=tmp_path / "web", database_url=postgres.new_database("pages"),
                        model_path=fake_model_file, secret_key=SECRET)
    app = create_app(settings)
    try:
        add_user(app.extensions["sigverify"].store, "ada", "admin")
        client = WebClient(app.test_client())
        assert client.login("ada").status_code == 302
        assert client.get("/customers").status_code == 200
        postgres.stop()
        try:
            page = client.get("/customers")
            assert page.status_code == 503 and "database_unavailable" in page.get_data(as_text=True)
        finally:
            postgres.start()
        assert client.get("/customers").status_code == 200, "the session survives the outage"
    finally:
        app.extensions["sigverify"].close()


def request_of_kind(api: ApiClient, url: str, name: str) -> tuple[int, dict[str, object]]:
    """Send one request: ``verify``, ``enroll``, ``identify``, ``customers`` (list) or ``healthz``."""
    if name == "verify":
        return api.verify("db-1", signature_png(1, 7))
    if name == "enroll":
        return api.enroll("db-3", [signature_png(3, 0)])
    if name == "identify":
        return api.identify(signature_png(1, 7))
    if name == "customers":
        return api.call("GET", "/customers")
    return healthz(url)


@contextmanager
def verifying_in_background(url: str, key: str) -> Iterator[list[str]]:
    """A client verifying ``db-1`` in a loop during the block; yields its outcomes ("200", "503 code")."""
    outcomes: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        with ApiClient(url, key, timeout=20) as api:
            while not stop.is_set():
                try:
                    status, body = api.verify("db-1", signature_png(1, 7))
                except (OSError, http.client.HTTPException) as error:
                    outcomes.append(f"no answer: {error!r}")
                    continue
                outcomes.append("200" if status == 200 else f"{status} {body.get('error')}")
                time.sleep(0.02)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield outcomes
    finally:
        stop.set()
        thread.join(timeout=30)


def healthz(url: str) -> tuple[int, dict[str, object]]:
    """GET /healthz (no key) as (status, JSON body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def stored_ids(settings: Settings) -> list[int]:
    """All reference ids in SQL, sorted."""
    customers, _ = sql_rows(Path(settings.database_url.removeprefix("sqlite:///")))
    return sorted(i for ids in customers.values() for i in ids)


def health(api: ApiClient) -> dict[str, object]:
    """The API's health report."""
    status, body = api.call("GET", "/health")
    assert status == 200, body
    return body


def test_index_file_that_cannot_be_written(tmp_path: Path, fake_model_file: Path):
    settings = Settings(data_dir=tmp_path / "var", model_path=fake_model_file)
    key = operator_key(settings)
    settings.index_path.mkdir(parents=True)  # a folder in the file's place: writes fail, even as root
    (settings.index_path / "occupied").write_text("x")
    with (serving(settings.data_dir, fake_model_file, server_env(settings)) as served,
          ApiClient(served.url, key) as api):
        assert any("cannot write the index file" in line for line in served.lines), served.lines
        status, body = api.enroll("ro-1", [signature_png(1, s) for s in range(3)])
        assert status == 201, body  # committed in SQL: the index is only a cache
        assert stored_ids(settings) == sorted(body["reference_ids"])
        report = health(api)
        assert report["consistent"] is False and report["stale_reason"] == "index_file_not_written"
        assert api.verify("ro-1", signature_png(1, 7))[0] == 200
        assert api.identify(signature_png(1, 7))[1]["candidates"][0]["customer_id"] == "ro-1"
    shutil.rmtree(settings.index_path)
    with (serving(settings.data_dir, fake_model_file, server_env(settings)) as served,
          ApiClient(served.url, key) as api):
        assert health(api)["consistent"] is True
        assert index_file_ids(settings) == stored_ids(settings)


@contextmanager
def tiny_tmpfs(folder: Path, kilobytes: int) -> Iterator[Path]:
    """Mount a tmpfs of ``kilobytes`` on ``folder`` (root only); skips the test when mounting is refused."""
    folder.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill_up(folder: Path) -> Path:
    """Write a file in ``folder`` until the file system is full; returns it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_index_on_a_full_then_read_only_disk(tmp_path: Path, fake_model_file: Path):
    with tiny_tmpfs(tmp_path / "var", 512) as data_dir:
        database = tmp_path / "db" / "sigverify.db"
        database.parent.mkdir()
        settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{database}",
                            model_path=fake_model_file)
        key = operator_key(settings)
        env = server_env(settings, SIGVERIFY_INDEX_SAVE_EVERY="1")  # every enrollment tries to write it
        with (serving(data_dir, fake_model_file, env) as served,
              ApiClient(served.url, key) as api):
            assert api.enroll("full-1", [signature_png(1, s) for s in range(2)])[0] == 201
            filler = fill_up(data_dir)
            assert api.enroll("full-2", [signature_png(2, s) for s in range(2)])[0] == 201
            assert health(api)["consistent"] is False
            filler.unlink()  # space again: the next change writes the file
            assert api.enroll("full-3", [signature_png(3, s) for s in range(2)])[0] == 201
            assert health(api)["consistent"] is True
            assert index_file_ids(settings) == stored_ids(settings)
            subprocess.run(["mount", "-o", "remount,ro", str(data_dir)], check=True)
            assert api.enroll("full-4", [signature_png(4, s) for s in range(2)])[0] == 201
            assert health(api)["consistent"] is False
            assert len(index_file_ids(settings)) == len(stored_ids(settings)) - 2
        subprocess.run(["mount", "-o", "remount,rw", str(data_dir)], check=True)
        with (serving(data_dir, fake_model_file, env) as served,
              ApiClient(served.url, key) as api):
            assert health(api)["consistent"] is True
            assert index_file_ids(settings) == stored_ids(settings)
