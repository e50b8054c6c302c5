"""Who may do what: every route against every role, login, rate limit, CSRF, headers, cookies, 500s."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from store.api_keys import create_api_key
from store.users import list_users, set_user_active
from tests.conftest import ADMIN_PASSWORD
from tests.web import WebClient, add_user
from webapp.access import check_every_view_declares_access, requires

ALL = frozenset({"admin", "operator", "auditor"})
OPERATORS = frozenset({"admin", "operator"})
AUDITORS = frozenset({"admin", "auditor"})
ADMINS = frozenset({"admin"})
PUBLIC = None
# The role table of the README, written out independently of webapp.access: a new route fails the
# matrix test until it is added here.
EXPECTED: dict[str, frozenset[str] | None] = {
    "auth.login": PUBLIC,
    "auth.logout": ALL,
    "auth.own_password": ALL,
    "health.healthz": PUBLIC,
    "admin.dashboard": ALL,
    "admin.customers": ALL,
    "admin.customer": ALL,
    "admin.reference_image": ALL,
    "admin.customer_threshold": ADMINS,
    "admin.customer_delete": ADMINS,
    "admin.reference_delete": ADMINS,
    "admin.audit": AUDITORS,
    "admin.audit_csv": AUDITORS,
    "signatures.enroll": OPERATORS,
    "signatures.verify": OPERATORS,
    "signatures.compare": OPERATORS,
    "signatures.identify": OPERATORS,
    "accounts.users": ADMINS,
    "accounts.user_active": ADMINS,
    "accounts.user_password": ADMINS,
    "accounts.api_keys": ADMINS,
    "accounts.api_key_disable": ADMINS,
    "accounts.api_key_rotate": ADMINS,
    "api.openapi": PUBLIC,
    "api.health": ALL,
    "api.customers_list": ALL,
    "api.customers_create": OPERATORS,
    "api.customers_get": ALL,
    "api.customers_delete": ADMINS,
    "api.references_list": ALL,
    "api.references_add": OPERATORS,
    "api.references_delete": ADMINS,
    "api.verify": OPERATORS,
    "api.compare": OPERATORS,
    "api.identify": OPERATORS,
}
PATH_VALUES = {"customer_id": "nobody", "reference_id": "999", "user_id": "999", "key_id": "999"}


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every route but the static files; logout last (it ends the session)."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: PATH_VALUES[match.group(1)], rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return sorted(found, key=lambda route: route[0] == "auth.logout")


def test_every_route_is_in_the_role_table(app: Flask):
    assert {endpoint for endpoint, _, _ in routes(app)} == set(EXPECTED)


@pytest.mark.parametrize("role", ["admin", "operator", "auditor"])
def test_role_matrix_pages_and_api(app: Flask, role: str):
    store = app.extensions["sigverify"].store
    user = add_user(store, f"{role}-user", role)
    _, key = create_api_key(store, user.id, "matrix")
    client = WebClient(app.test_client())
    assert client.login(f"{role}-user").status_code == 302
    for endpoint, method, url in routes(app):
        allowed = EXPECTED[endpoint]
        if url.startswith("/api/"):
            response = client.api(method, url, key)
        elif method == "POST":
            response = client.post(url, {})
        else:
            response = client.get(url)
        where = f"{role} {method} {url}: {response.status_code}"
        if endpoint != "auth.logout":  # the one route that sends a user to the login page on success
            assert "/login" not in response.headers.get("Location", ""), where
        if allowed is PUBLIC or role in allowed:
            assert response.status_code not in (401, 403) or endpoint == "auth.login", where
        else:
            assert response.status_code == 403, where


def test_anonymous_requests_are_sent_to_login_or_refused(app: Flask):
    client = WebClient(app.test_client())
    for endpoint, method, url in routes(app):
        if EXPECTED[endpoint] is PUBLIC:
            continue
        if url.startswith("/api/"):
            response = client.api(method, url, None)
            assert response.status_code == 401 and response.json["error"] == "missing_api_key", url
        else:
            response = client.client.open(url, method=method)
            assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_a_view_without_declared_permission_stops_the_app():
    bare = Flask(__name__)

    @bare.route("/open")
    def forgotten() -> str:
        return "no check"

    with pytest.raises(RuntimeError, match="forgotten"):
        check_every_view_declares_access(bare)
    requires("view")(forgotten)
    check_every_view_declares_access(bare)
    with pytest.raises(ValueError):
        requires("superuser")


def test_login_logout_and_safe_next(client: WebClient):
    login = client.get("/login?next=/customers")
    assert login.status_code == 200 and 'name="next" value="/customers"' in login.get_data(as_text=True)
    response = client.login("admin", ADMIN_PASSWORD, next="/customers")
    assert response.status_code == 302 and response.headers["Location"] == "/customers"
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = client.login("admin", ADMIN_PASSWORD, next=target)
        assert response.headers["Location"] == "/", target
        assert client.post("/logout").status_code == 302


def test_wrong_password_and_disabled_user(app: Flask, client: WebClient):
    store = app.extensions["sigverify"].store
    response = client.login("admin", "wrong")
    assert response.status_code == 401 and "Wrong user name or password" in response.get_data(as_text=True)
    operator = add_user(store, "op", "operator")
    assert client.login("op").status_code == 302 and client.get("/customers").status_code == 200
    set_user_active(store, operator.id, False)
    assert client.get("/customers").status_code == 302  # the session no longer counts
    assert client.login("op").status_code == 401


def test_login_rate_limit_per_user_name(app: Flask, client: WebClient):
    add_user(app.extensions["sigverify"].store, "other", "auditor")
    for _ in range(5):
        assert client.login("admin", "wrong").status_code == 401
    blocked = client.login("admin", ADMIN_PASSWORD)
    assert blocked.status_code == 429 and "too many failed logins" in blocked.get_data(as_text=True)
    assert client.login("other").status_code == 302  # another name from the same address still works


def test_forms_without_a_valid_csrf_token_are_refused(app: Flask, client: WebClient):
    client.login("admin", ADMIN_PASSWORD)
    for token in (None, "forged-token"):
        data = {"customer_id": "x"} if token is None else {"customer_id": "x", "csrf_token": token}
        response = client.post("/compare", data, csrf=False)
        assert response.status_code == 400 and "not sent from this site" in response.get_data(as_text=True)
    assert client.post("/logout", csrf=False).status_code == 400
    assert client.get("/").status_code == 200  # still logged in
    fresh = WebClient(app.test_client())
    refused = fresh.post("/login", {"username": "admin", "password": ADMIN_PASSWORD}, csrf=False)
    assert refused.status_code == 400


def test_security_headers_and_session_cookie(client: WebClient):
    for response in (client.get("/login"), client.get("/healthz"), client.get("/api/v1/openapi.json")):
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
    response = client.login("admin", ADMIN_PASSWORD)
    cookie = next(
        value
        for name, value in response.headers.items()
        if name == "Set-Cookie" and value.startswith("sigverify_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Cache-Control"] == "no-store"


def test_unexpected_errors_give_no_traceback(app: Flask, client: WebClient, monkeypatch: pytest.MonkeyPatch):
    app.config["TESTING"] = False
    app.debug = False

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("webapp.api.list_customers", broken)
    monkeypatch.setattr("webapp.admin.list_customers", broken)
    store = app.extensions["sigverify"].store
    _, key = create_api_key(store, list_users(store)[0].id, "k")
    response = client.api("GET", "/api/v1/customers", key)
    assert response.status_code == 500 and response.json["error"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)
    client.login("admin", ADMIN_PASSWORD)
    page = client.get("/customers")
    assert page.status_code == 500 and "Traceback" not in page.get_data(as_text=True)
    assert "secret internals" not in page.get_data(as_text=True)


def test_secret_key_is_created_once_and_kept_private(tmp_path):  # type: ignore[no-untyped-def]
    from store.settings import Settings
    from webapp.security import secret_key

    settings = Settings(data_dir=tmp_path / "data")
    first = secret_key(settings)
    assert len(first) == 64 and secret_key(settings) == first
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [path.name for path in (tmp_path / "data").iterdir()] == ["secret_key"]
    assert secret_key(settings.with_overrides(secret_key="given")) == "given"
