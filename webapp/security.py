"""Session secret, cookie flags and the security headers sent with every response."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, Response

from store.settings import Settings

SECRET_FILE = "secret_key"
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "img-src 'self' data: blob:",
    "style-src 'self'",
    "script-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def secret_key(settings: Settings) -> str:
    """``settings.secret_key``, else a random key created once in ``data_dir/secret_key`` (mode 600).

    The file appears whole or not at all (written aside, then hard-linked into place), so processes
    starting together all read the same key.
    """
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:  # another process published its key first
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def configure_security(app: Flask, settings: Settings) -> None:
    """Secret key, cookie flags, request size cap, and the headers added to every response."""
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_COOKIE_NAME="sigverify_session",
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session
    )
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    """CSP (no inline script, no framing), nosniff, no referrer leaks; answers are not cached
    unless the view said otherwise (static files are revalidated)."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response
