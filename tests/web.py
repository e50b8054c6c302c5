"""A Flask test client that logs in and sends CSRF tokens like a browser, and test users per role."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash
from werkzeug.test import TestResponse

from store.database import Store
from store.users import UserRecord, create_user

REPO_ROOT = Path(__file__).resolve().parent.parent
URL_LINE = re.compile(r"serving on (http://\S+/)")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "password-for-tests"


def add_user(store: Store, username: str, role: str, password: str = PASSWORD) -> UserRecord:
    """Create a user with a cheap password hash (tests only: the app uses scrypt)."""
    return create_user(store, username, generate_password_hash(password, method="pbkdf2:sha256:1000"), role)


class WebClient:
    """Wraps a FlaskClient: ``login``, and ``post`` that adds the session's CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._token: str | None = None

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        """GET ``url``."""
        return self.client.get(url, **kwargs)

    def token(self, page: str = "/login") -> str:
        """The CSRF token of this session, read from a page's form."""
        if self._token is None:
            found = TOKEN.search(self.client.get(page).get_data(as_text=True))
            assert found, f"no CSRF token on {page}"
            self._token = found.group(1)
        return self._token

    def post(
        self, url: str, data: dict[str, Any] | None = None, csrf: bool = True, **kwargs: Any
    ) -> TestResponse:
        """POST a form to ``url`` (multipart when it holds files), with the CSRF token unless told not."""
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.token()
        response = self.client.post(url, data=form, **kwargs)
        if url in ("/login", "/logout") and response.status_code == 302:  # a new session
            self._token = None
        return response

    def login(self, username: str, password: str = PASSWORD, **fields: str) -> TestResponse:
        """Log in through the form (``fields``: e.g. ``next``)."""
        return self.post("/login", {"username": username, "password": password, **fields})

    def api(self, method: str, url: str, key: str | None, **kwargs: Any) -> TestResponse:
        """An API request with ``X-API-Key: key`` (no header when None)."""
        headers = {"X-API-Key": key} if key is not None else {}
        return self.client.open(url, method=method, headers=headers, **kwargs)


@dataclass
class Served:
    """A running ``sigverify serve``: its URL, process, and the stderr lines read so far."""

    url: str
    process: subprocess.Popen[str]
    lines: list[str]


@contextmanager
def serving(data_dir: Path, model_file: Path, env: dict[str, str], *options: str) -> Iterator[Served]:
    """Run ``sigverify serve --port 0 OPTIONS`` with the fake model until the block ends (SIGTERM)."""
    command = [sys.executable, "-m", "tests.fake_model", "--data-dir", str(data_dir), "--model",
               str(model_file), "serve", "--port", "0", *options]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGVERIFY_")}
    process = subprocess.Popen(command, cwd=REPO_ROOT, env={**clean, **env}, stderr=subprocess.PIPE,
                               text=True)
    lines: list[str] = []
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (line := process.stderr.readline()):
            lines.append(line)
            found = URL_LINE.search(line)
            if found:
                reader = threading.Thread(target=lines.extend, args=(process.stderr,), daemon=True)
                reader.start()  # keep reading, so the server never blocks on a full pipe
                yield Served(found.group(1), process, lines)
                return
        raise AssertionError(f"serve did not start: {''.join(lines)}")
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
