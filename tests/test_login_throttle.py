"""The login rate limit kept in SQL: shared by servers on one database, kept over a restart, expiring.

On SQLite and, when ``SIGVERIFY_TEST_DATABASE_URL`` is set, on PostgreSQL; a database outage during
login is a 503, never a 500 and never a login that skipped the throttle.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from siamese.errors import SigverifyError
from store.database import Store
from store.login_failures import key_hash
from store.migrate import upgrade_database
from store.schema import LoginFailure
from store.settings import Settings
from tests.conftest import ADMIN_PASSWORD
from tests.postgres_server import PrivatePostgres, private_postgres_or_skip
from tests.web import WebClient
from webapp.errors import LoginThrottledError
from webapp.throttle import LoginThrottle


class Clock:
    """A UTC wall clock that moves only when told."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def database_settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings of a migrated database (no model: the throttle needs none)."""
    settings = Settings(data_dir=tmp_path / "var", database_url=database_url)
    upgrade_database(settings)
    return settings


@pytest.fixture
def login_store(database_settings: Settings, new_store: Callable[[Settings], Store]) -> Store:
    """A Store on the migrated database."""
    return new_store(database_settings)


def failing(throttle: LoginThrottle, username: str, address: str, times: int = 1) -> None:
    """Make ``times`` attempts that fail (each stays counted, as a wrong password leaves it)."""
    for _ in range(times):
        throttle.start(username, address)


def stored_failures(store: Store, key: str | None = None) -> int:
    """Rows of ``login_failures`` (of ``key`` only, when given)."""
    query = select(func.count()).select_from(LoginFailure)
    if key is not None:
        query = query.where(LoginFailure.key_hash == key_hash(key))
    with store.sessions() as session:
        return int(session.scalar(query) or 0)


def test_window_expires_and_address_allows_more(login_store: Store):
    clock = Clock()
    throttle = LoginThrottle(login_store, limit=2, window=60, clock=clock)
    alice = throttle.keys("Alice", "10.0.0.1")
    failing(throttle, "Alice", "10.0.0.1")
    assert throttle.retry_after(alice) == 0
    failing(throttle, "Alice", "10.0.0.1")
    assert throttle.retry_after(alice) == pytest.approx(60)
    message = "too many failed logins; try again in 2 minutes"
    with pytest.raises(LoginThrottledError, match=message) as refused:
        throttle.start("ALICE ", "10.0.0.9")  # names compare case-blind
    assert refused.value.http_status == 429 and refused.value.code == "too_many_attempts"
    clock.advance(30)
    assert throttle.retry_after(alice) == pytest.approx(30)
    clock.advance(31)
    assert throttle.retry_after(alice) == 0
    throttle.start("alice", "10.0.0.1")
    for name in ("b", "c", "d", "e"):  # 8 failures from one address (2 x 4), two per name
        failing(throttle, name, "10.0.0.2", times=2)
    with pytest.raises(LoginThrottledError):
        throttle.start("fresh", "10.0.0.2")
    assert throttle.retry_after(throttle.keys("fresh", "10.0.0.2")) == pytest.approx(60)
    assert throttle.retry_after(throttle.keys("fresh", "10.0.0.3")) == 0


def test_blocked_attempts_do_not_prolong_the_block(login_store: Store):
    clock = Clock()
    throttle = LoginThrottle(login_store, limit=2, window=60, clock=clock)
    failing(throttle, "bob", "10.0.0.1", times=2)
    for _ in range(3):
        clock.advance(19)
        with pytest.raises(LoginThrottledError):
            throttle.start("bob", "10.0.0.1")
    assert stored_failures(login_store, "user:bob") == 2
    clock.advance(4)  # 61 s after the two failures
    throttle.start("bob", "10.0.0.1")


def test_success_clears_the_user_name_but_not_the_address(login_store: Store):
    clock = Clock()
    throttle = LoginThrottle(login_store, limit=2, window=60, clock=clock)
    failing(throttle, "carol", "10.0.0.5")
    for name in ("x", "y", "z"):
        failing(throttle, name, "10.0.0.5", times=2)
    throttle.succeeded(throttle.start("carol", "10.0.0.5"))  # the 8th attempt from the address succeeds
    assert stored_failures(login_store, "user:carol") == 0
    assert stored_failures(login_store, "address:10.0.0.5") == 7  # the success is not a failure
    assert throttle.retry_after(throttle.keys("carol", "10.0.0.6")) == 0
    failing(throttle, "w", "10.0.0.5")  # the address's 8th failure
    with pytest.raises(LoginThrottledError):
        throttle.start("carol", "10.0.0.5")


def test_two_servers_share_the_count_and_a_restart_keeps_it(
    database_settings: Settings, new_store: Callable[[Settings], Store]
):
    clock = Clock()
    first = LoginThrottle(new_store(database_settings), limit=3, window=60, clock=clock)
    second = LoginThrottle(new_store(database_settings), limit=3, window=60, clock=clock)
    failing(first, "dave", "10.0.0.1", times=2)
    failing(second, "dave", "10.0.0.2")
    for throttle in (first, second):
        with pytest.raises(LoginThrottledError):
            throttle.start("dave", "10.0.0.3")
    first.store.close()
    restarted = LoginThrottle(new_store(database_settings), limit=3, window=60, clock=clock)
    with pytest.raises(LoginThrottledError):
        restarted.start("dave", "10.0.0.4")
    clock.advance(60)
    restarted.succeeded(restarted.start("dave", "10.0.0.4"))


def test_expired_failures_are_deleted(login_store: Store):
    """A failure deletes its keys' expired rows; once per window a sweep deletes every key's."""
    clock = Clock()
    throttle = LoginThrottle(login_store, limit=5, window=60, clock=clock)
    failing(throttle, "grace", "10.0.0.3")  # t=0: the first sweep
    clock.advance(10)
    failing(throttle, "erin", "10.0.0.1", times=2)
    failing(throttle, "frank", "10.0.0.2", times=2)
    clock.advance(55)
    failing(throttle, "erin", "10.0.0.1")  # t=65: sweeps grace's rows (t=0) out
    assert stored_failures(login_store) == 2 * 5
    clock.advance(10)
    failing(throttle, "erin", "10.0.0.1")  # t=75: deletes erin's and 10.0.0.1's rows of t=10
    assert stored_failures(login_store, "user:erin") == stored_failures(login_store, "address:10.0.0.1") == 2
    assert stored_failures(login_store) == 2 * 2 + 2 * 2  # frank's (t=10) wait for the next sweep
    clock.advance(50)
    failing(throttle, "heidi", "10.0.0.4")  # t=125: sweeps everything up to t=65 out
    assert stored_failures(login_store) == 2 * 2  # erin's of t=75, heidi's


def test_attempts_in_parallel_do_not_slip_past_the_limit(
    database_settings: Settings, new_store: Callable[[Settings], Store]
):
    limit, parallel = 2, 6
    throttles = [LoginThrottle(new_store(database_settings), limit, 60) for _ in range(parallel)]
    ready = threading.Barrier(parallel)
    outcomes: list[str] = []

    def attempt(throttle: LoginThrottle) -> None:
        ready.wait()
        try:
            throttle.start("heidi", "10.0.0.1")
            outcomes.append("allowed")
        except SigverifyError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=attempt, args=(throttle,)) for throttle in throttles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == parallel and outcomes.count("allowed") <= limit, outcomes
    assert stored_failures(new_store(database_settings), "user:heidi") == outcomes.count("allowed")


@pytest.fixture
def web_app_on(
    tmp_path: Path, fake_model: Any, fake_model_file: Path
) -> Iterator[Callable[[str, str], Flask]]:
    """Start web apps (``create_app``) on a database URL, each with its own data dir; closed at the end."""
    from webapp import create_app

    apps: list[Flask] = []

    def start(database_url: str, name: str) -> Flask:
        settings = Settings(data_dir=tmp_path / name, database_url=database_url, model_path=fake_model_file,
                            admin_password=ADMIN_PASSWORD, secret_key="secret-for-tests",
                            login_max_attempts=3)
        apps.append(create_app(settings))
        apps[-1].config["TESTING"] = True
        return apps[-1]

    yield start
    for app in apps:
        app.extensions["sigverify"].close()


def test_two_apps_on_one_database_share_the_limit_and_a_restart_keeps_it(
    tmp_path: Path, database_url: str, web_app_on: Callable[[str, str], Flask]
):
    (tmp_path / "var").mkdir()  # the SQLite file's folder
    first, second = web_app_on(database_url, "a"), web_app_on(database_url, "b")
    on_first, on_second = WebClient(first.test_client()), WebClient(second.test_client())
    assert on_first.login("admin", "wrong").status_code == 401
    assert on_second.login("admin", "wrong").status_code == 401
    assert on_first.login("admin", "wrong").status_code == 401
    for client in (on_first, on_second):
        blocked = client.login("admin", ADMIN_PASSWORD)
        assert blocked.status_code == 429 and "too many failed logins" in blocked.get_data(as_text=True)
    first.extensions["sigverify"].close()
    restarted = WebClient(web_app_on(database_url, "a").test_client())
    assert restarted.login("admin", ADMIN_PASSWORD).status_code == 429


@contextmanager
def database_gone(store: Store) -> Iterator[None]:
    """During the block the store's engine cannot open a connection, as if the database file were gone."""
    store.engine.dispose()

    def refuse(*args: object) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    event.listen(store.engine, "do_connect", refuse)
    try:
        yield
    finally:
        event.remove(store.engine, "do_connect", refuse)


def test_login_while_the_database_is_away_is_a_503(app: Flask, client: WebClient):
    app.config["TESTING"] = False
    client.token()  # the login form, while the database is there
    with database_gone(app.extensions["sigverify"].store):
        response = client.login("admin", ADMIN_PASSWORD)
    assert response.status_code == 503 and "database_unavailable" in response.get_data(as_text=True)
    assert response.headers["Retry-After"]
    assert client.login("admin", ADMIN_PASSWORD).status_code == 302


def test_a_throttle_that_cannot_clear_the_count_lets_nobody_in(
    app: Flask, client: WebClient, monkeypatch: pytest.MonkeyPatch
):
    app.config["TESTING"] = False

    def database_lost(*args: object, **kwargs: object) -> None:
        raise OperationalError("DELETE", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr("webapp.throttle.delete_login_failures", database_lost)
    response = client.login("admin", ADMIN_PASSWORD)
    assert response.status_code == 503 and "database_unavailable" in response.get_data(as_text=True)
    assert client.get("/customers").status_code == 302  # not logged in: off to the login page


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server that the test may stop and start."""
    with private_postgres_or_skip() as server:
        yield server


def test_login_while_postgresql_is_stopped(
    web_app_on: Callable[[str, str], Flask], postgres: PrivatePostgres
):
    app = web_app_on(postgres.new_database("logins"), "web")
    app.config["TESTING"] = False
    client = WebClient(app.test_client())
    assert client.login("admin", "wrong").status_code == 401
    postgres.stop()
    try:
        for password in ("wrong", ADMIN_PASSWORD):
            response = client.login("admin", password)
            assert response.status_code == 503 and "database_unavailable" in response.get_data(as_text=True)
    finally:
        postgres.start()
    assert client.login("admin", ADMIN_PASSWORD).status_code == 302
