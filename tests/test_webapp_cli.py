"""``sigverify users`` and ``sigverify serve`` (a real waitress process on loopback, fake model)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from store.api_keys import authenticate_api_key
from store.database import Store
from store.settings import Settings
from tests.web import serving


def test_users_create_list_and_key(runner, web_settings: Settings):  # type: ignore[no-untyped-def]
    created = runner("users", "create", "olga", "--role", "operator", "--password", "long-enough-1")
    assert created.exit_code == 0 and created.stdout.strip() == "created user olga (operator)"
    prompted = runner("users", "create", "aud", "--role", "auditor", input="long-enough-2\nlong-enough-2\n")
    assert prompted.exit_code == 0, prompted.output
    again = runner("users", "create", "olga", "--role", "admin", "--password", "long-enough-1")
    assert again.exit_code == 2 and "error: user_exists" in again.stderr
    assert runner("users", "create", "p", "--role", "admin", "--password", "short").exit_code == 2
    assert runner("users", "create", "p", "--role", "boss", "--password", "long-enough-1").exit_code == 2
    assert runner("users", "list").stdout.splitlines() == ["aud\tauditor\tactive", "olga\toperator\tactive"]
    key = runner("users", "create-key", "olga", "--name", "scanner")
    assert key.exit_code == 0 and "shown once" in key.stderr
    with Store(web_settings) as store:
        user, record = authenticate_api_key(store, key.stdout.strip())
    assert (user.username, record.name) == ("olga", "scanner")
    assert runner("users", "create-key", "nobody").exit_code == 1


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_serve_runs_waitress_prints_url_and_first_admin_once(tmp_path: Path, fake_model_file: Path):
    data_dir = tmp_path / "served"
    with serving(data_dir, fake_model_file, {}) as served:
        url, lines = served.url, served.lines
        status, headers, body = get(url + "healthz")
        assert status == 200 and json.loads(body)["consistent"] is True
        assert headers["Server"] == "sigverify"  # waitress, not the development server
        status, headers, body = get(url + "no-such-page")
        assert status == 404 and b"Traceback" not in body and b"Werkzeug Debugger" not in body
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    printed = [line for line in lines if "created user 'admin'" in line]
    assert len(printed) == 1 and re.search(r"with password \S{12,}", printed[0])
    with serving(data_dir, fake_model_file, {}) as served:
        assert get(served.url + "healthz")[0] == 200
    assert not any("created user" in line for line in served.lines)


def test_serve_takes_the_admin_password_from_the_environment(tmp_path: Path, fake_model_file: Path):
    env = {"SIGVERIFY_ADMIN_PASSWORD": "from-the-environment"}
    with serving(tmp_path / "served", fake_model_file, env) as served:
        assert get(served.url + "login")[0] == 200
    printed = "".join(served.lines)
    assert "SIGVERIFY_ADMIN_PASSWORD" in printed and "from-the-environment" not in printed


def children_of(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def test_serve_with_worker_processes_shares_one_port(tmp_path: Path, fake_model_file: Path):
    with serving(tmp_path / "served", fake_model_file, {}, "--workers", "2", "--threads", "2") as served:
        workers = children_of(served.process.pid)
        assert len(workers) == 2
        for _ in range(6):
            status, _, body = get(served.url + "healthz")
            assert status == 200 and json.loads(body)["status"] == "ok"
    assert served.process.returncode == 0
    for pid in workers:  # the workers stopped with the parent
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert sum("created user 'admin'" in line for line in served.lines) == 1


def test_serve_with_the_database_down_says_so_without_a_traceback(tmp_path: Path, fake_model_file: Path):
    """Nothing listens on port 1: serve exits 2 with database_unavailable, not a Python traceback."""
    down = "postgresql+psycopg://sigverify@127.0.0.1:1/test?connect_timeout=3"
    result = subprocess.run(
        [sys.executable, "-m", "webapp.cli", "--data-dir", str(tmp_path / "d"), "--database-url", down,
         "--model", str(fake_model_file), "serve", "--port", "0"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert "error: database_unavailable" in result.stderr and "Traceback" not in result.stderr
