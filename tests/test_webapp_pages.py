"""Every admin page with the Flask test client: content, actions, and the errors shown as messages."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace

import pytest
from flask import Flask
from sqlalchemy import func, select

from store.customers import create_customer
from store.schema import Verification
from tests.conftest import ADMIN_PASSWORD, signature_png
from tests.web import WebClient, add_user


def upload(writer: int, sample: int, forgery: bool = False) -> tuple[io.BytesIO, str]:
    """A synthetic signature as a form file."""
    return io.BytesIO(
        signature_png(writer, sample, forgery)
    ), f"w{writer}-{sample}{'f' if forgery else ''}.png"


def text(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


@pytest.fixture
def admin(client: WebClient) -> WebClient:
    """The test client logged in as the first admin."""
    assert client.login("admin", ADMIN_PASSWORD).status_code == 302
    return client


@pytest.fixture
def enrolled(admin: WebClient) -> WebClient:
    """Customer w3 enrolled with three genuine signatures of writer 3."""
    response = admin.post(
        "/enroll",
        {"customer_id": "w3", "display_name": "Writer Three", "images": [upload(3, s) for s in range(3)]},
    )
    assert response.status_code == 200, text(response)
    return admin


def audit_rows(app: Flask) -> int:
    with app.extensions["sigverify"].store.sessions() as session:
        return int(session.scalar(select(func.count(Verification.id))) or 0)


def test_enroll_shows_each_reference_and_creates_the_customer(enrolled: WebClient):
    page = text(enrolled.get("/customers/w3"))
    assert "Writer Three" in page and page.count('src="/customers/w3/references/') == 3
    image = enrolled.get("/customers/w3/references/1.png")
    assert image.status_code == 200 and image.mimetype == "image/png" and image.data[:4] == b"\x89PNG"


def test_enroll_result_lists_quality_and_warnings(admin: WebClient):
    images = [upload(3, 0), upload(3, 1), upload(3, 2), upload(8, 0)]
    page = text(admin.post("/enroll", {"customer_id": "mixed", "images": images}))
    assert "Created" in page and page.count("usable, consistent") == 3
    assert "inconsistent_reference" in page and "image 4 scores" in page
    assert "reference 4 scores" in text(admin.get("/customers/mixed"))  # the customer page reviews it too


def test_blocking_warning_is_shown_and_only_an_admin_may_force(app: Flask, admin: WebClient):
    store = app.extensions["sigverify"].store
    store.settings = replace(store.settings, enroll_blocking_warnings="inconsistent_reference")
    images = [upload(3, 0), upload(3, 1), upload(8, 0)]
    refused = admin.post("/enroll", {"customer_id": "odd", "images": images})
    assert refused.status_code == 422 and "inconsistent_reference" in text(refused)
    add_user(store, "op", "operator")
    operator = WebClient(app.test_client())
    operator.login("op")
    images = [upload(3, 0), upload(3, 1), upload(8, 0)]
    assert operator.post("/enroll", {"customer_id": "odd", "images": images, "force": "1"}).status_code == 403
    images = [upload(3, 0), upload(3, 1), upload(8, 0)]
    assert admin.post("/enroll", {"customer_id": "odd", "images": images, "force": "1"}).status_code == 200


def test_enroll_errors_are_messages(admin: WebClient):
    bad = admin.post(
        "/enroll", {"customer_id": "x1", "images": [upload(3, 0), (io.BytesIO(b"not an image"), "a.png")]}
    )
    assert bad.status_code == 415 and "image 2" in text(bad) and "Traceback" not in text(bad)
    assert admin.post("/enroll", {"customer_id": "x1"}, content_type="multipart/form-data").status_code == 400
    assert admin.post("/enroll", {"customer_id": "x1"}).status_code == 415  # a form without files
    invalid = admin.post("/enroll", {"customer_id": "bad id", "images": [upload(3, 0)]})
    assert invalid.status_code == 422 and "may only hold" in text(invalid)
    assert admin.get("/customers/x1").status_code == 404  # nothing stored


def test_verify_genuine_and_forged_with_evidence(app: Flask, enrolled: WebClient):
    genuine = text(enrolled.post("/verify", {"customer_id": "w3", "image": upload(3, 5)}))
    assert re.search(r'id="decision">.*MATCH', genuine) and "NO MATCH" not in genuine
    assert genuine.count("data:image/png;base64,") == 3  # reference, query, overlay
    assert genuine.count('src="/customers/w3/references/') == 3  # one row per reference score
    forged = text(enrolled.post("/verify", {"customer_id": "w3", "image": upload(3, 5, forgery=True)}))
    assert "NO MATCH" in forged
    score = float(re.search(r'id="score">([0-9.]+)<', forged).group(1))  # type: ignore[union-attr]
    threshold = float(re.search(r'id="threshold">([0-9.]+)<', forged).group(1))  # type: ignore[union-attr]
    assert score < threshold
    with app.extensions["sigverify"].store.sessions() as session:
        actors = {(row.actor, row.channel) for row in session.scalars(select(Verification))}
    assert actors == {("admin", "web")}


def test_verify_errors_are_messages(app: Flask, enrolled: WebClient):
    unknown = enrolled.post("/verify", {"customer_id": "nobody", "image": upload(3, 5)})
    assert unknown.status_code == 404 and "no customer with ID" in text(unknown)
    assert (
        enrolled.post("/verify", {"customer_id": "w3"}, content_type="multipart/form-data").status_code == 400
    )
    blank = enrolled.post("/verify", {"customer_id": "w3", "image": (io.BytesIO(b""), "")})
    assert blank.status_code == 400
    wrong_type = enrolled.post("/verify", {"customer_id": "w3", "image": (io.BytesIO(b"%PDF-1.4"), "a.pdf")})
    assert wrong_type.status_code == 415
    app.config["MAX_CONTENT_LENGTH"] = 500  # the upload has about 1.5 kB
    too_large = enrolled.post("/verify", {"customer_id": "w3", "image": upload(3, 5)})
    assert too_large.status_code == 413 and "Traceback" not in text(too_large)
    assert audit_rows(app) == 0


def test_compare_stores_nothing(app: Flask, admin: WebClient):
    page = text(admin.post("/compare", {"image_a": upload(3, 0), "image_b": upload(3, 1)}))
    assert "MATCH" in page and page.count("data:image/png;base64,") == 3
    other = text(admin.post("/compare", {"image_a": upload(3, 0), "image_b": upload(8, 0)}))
    assert "NO MATCH" in other
    assert audit_rows(app) == 0 and "No customer" in text(admin.get("/customers"))


def test_identify_lists_best_customers(enrolled: WebClient):
    enrolled.post("/enroll", {"customer_id": "w4", "images": [upload(4, s) for s in range(3)]})
    page = text(enrolled.post("/identify", {"image": upload(3, 6), "top": "2"}))
    ranked = re.findall(r'<td><a href="/customers/([^"]+)">', page)
    assert ranked == ["w3", "w4"]
    assert enrolled.post("/identify", {"image": upload(3, 6), "top": "0"}).status_code == 400


def test_customers_search_and_pagination(app: Flask, admin: WebClient):
    store = app.extensions["sigverify"].store
    for number in range(30):
        create_customer(store, f"c{number:02d}", "Zed" if number == 7 else None)
    first = text(admin.get("/customers"))
    assert "Page 1 of 2" in first and "c24" in first and "c25" not in first
    second = text(admin.get("/customers?page=2"))
    assert "c25" in second and "c29" in second and "c00" not in second
    found = text(admin.get("/customers?q=zed"))
    assert "c07" in found and "c08" not in found
    assert "No customer matches" in text(admin.get("/customers?q=nothing-like-this"))
    assert admin.get("/customers?page=abc").status_code == 400


def test_customer_threshold_history_and_deletion(app: Flask, enrolled: WebClient):
    enrolled.post("/verify", {"customer_id": "w3", "image": upload(3, 5)})
    page = text(enrolled.get("/customers/w3"))
    assert "Verification history" in page and "admin (web)" in page
    assert enrolled.post("/customers/w3/threshold", {"threshold": "0.99"}).status_code == 302
    assert "0.990" in text(enrolled.get("/customers/w3"))
    assert "NO MATCH" in text(enrolled.post("/verify", {"customer_id": "w3", "image": upload(3, 5)}))
    assert enrolled.post("/customers/w3/threshold", {"threshold": "1.5"}).status_code == 400
    assert enrolled.post("/customers/w3/threshold", {"clear": "1"}).status_code == 302
    assert "global (" in text(enrolled.get("/customers/w3"))
    assert enrolled.post("/customers/w3/references/1/delete").status_code == 302
    assert text(enrolled.get("/customers/w3")).count('src="/customers/w3/references/') == 2
    confirm = enrolled.get("/customers/w3/delete")
    assert "Type the customer ID" in text(confirm)
    assert enrolled.post("/customers/w3/delete", {"confirm_id": "w4"}).status_code == 400
    assert enrolled.get("/customers/w3").status_code == 200
    assert enrolled.post("/customers/w3/delete", {"confirm_id": "w3"}).status_code == 302
    gone = enrolled.get("/customers/w3")
    assert gone.status_code == 404 and "no customer with ID" in text(gone)
    assert audit_rows(app) == 2  # the audit outlives the customer
    assert app.extensions["sigverify"].store.index.ids().size == 0


def test_dashboard_counts_rates_and_histogram(enrolled: WebClient):
    for query in (upload(3, 5), upload(3, 6), upload(3, 5, forgery=True)):
        enrolled.post("/verify", {"customer_id": "w3", "image": query})
    page = text(enrolled.get("/"))
    assert re.search(r'<span class="number">1</span> customers', page)
    assert re.search(r'<span class="number">3</span> references', page)
    assert re.search(r'<span class="number">3</span> verifications', page)
    assert "67%" in page and "2 accepted, 1 rejected" in page
    assert page.count("<rect ") == 10 and "Recent verifications" in page


def test_audit_filters_and_csv(enrolled: WebClient):
    for query in (upload(3, 5), upload(3, 6), upload(3, 5, forgery=True)):
        enrolled.post("/verify", {"customer_id": "w3", "image": query})
    everything = text(enrolled.get("/audit"))
    assert everything.count("<tr><td>") == 3
    assert text(enrolled.get("/audit?decision=reject")).count("<tr><td>") == 1
    assert text(enrolled.get("/audit?customer=other")).count("<tr><td>") == 0
    assert text(enrolled.get("/audit?from=2000-01-01&to=2000-01-02")).count("<tr><td>") == 0
    assert enrolled.get("/audit?from=yesterday").status_code == 400
    exported = enrolled.get("/audit.csv?decision=accept")
    assert exported.mimetype == "text/csv" and "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text(exported))))
    assert rows[0][:4] == ["id", "created_at", "customer_id", "decision"] and len(rows) == 3
    assert {row[3] for row in rows[1:]} == {"accept"}


def test_users_admin(app: Flask, admin: WebClient):
    created = admin.post(
        "/admin/users", {"username": "olga", "role": "operator", "password": "long-enough-1"}
    )
    assert created.status_code == 302 and "olga" in text(admin.get("/admin/users"))
    assert (
        admin.post(
            "/admin/users", {"username": "olga", "role": "operator", "password": "long-enough-1"}
        ).status_code
        == 409
    )
    assert (
        admin.post("/admin/users", {"username": "p", "role": "operator", "password": "short"}).status_code
        == 400
    )
    assert (
        admin.post("/admin/users", {"username": "p", "role": "boss", "password": "long-enough-1"}).status_code
        == 422
    )
    olga = WebClient(app.test_client())
    assert olga.login("olga", "long-enough-1").status_code == 302
    assert admin.post("/admin/users/2/active", {"active": "0"}).status_code == 302
    assert olga.get("/customers").status_code == 302
    assert admin.post("/admin/users/2/active", {"active": "1"}).status_code == 302
    assert admin.post("/admin/users/2/password", {"password": "another-pass-2"}).status_code == 302
    assert olga.login("olga", "long-enough-1").status_code == 401
    assert olga.login("olga", "another-pass-2").status_code == 302
    last = admin.post("/admin/users/1/active", {"active": "0"})
    assert last.status_code == 409 and "last active admin" in text(last)


def test_api_keys_admin_shows_a_key_once(app: Flask, admin: WebClient):
    page = text(admin.post("/admin/api-keys", {"user_id": "1", "name": "scanner"}))
    secret = re.search(r'id="api-key">([^<]+)<', page).group(1)  # type: ignore[union-attr]
    assert admin.api("GET", "/api/v1/health", secret).status_code == 200
    listing = text(admin.get("/admin/api-keys"))
    assert "scanner" in listing and secret not in listing and secret[:12] in listing
    rotated = text(admin.post("/admin/api-keys/1/rotate"))
    new_secret = re.search(r'id="api-key">([^<]+)<', rotated).group(1)  # type: ignore[union-attr]
    assert "previous key is disabled" in rotated
    assert admin.api("GET", "/api/v1/health", secret).status_code == 401
    assert admin.api("GET", "/api/v1/health", new_secret).status_code == 200
    assert admin.post("/admin/api-keys/2/disable").status_code == 302
    assert admin.api("GET", "/api/v1/health", new_secret).status_code == 401
    assert admin.post("/admin/api-keys", {"user_id": "1", "name": ""}).status_code == 400
    assert admin.post("/admin/api-keys", {"user_id": "77", "name": "x"}).status_code == 404


def test_any_user_changes_their_own_password(app: Flask, client: WebClient):
    add_user(app.extensions["sigverify"].store, "aud", "auditor")
    client.login("aud")
    assert "Change your password" in text(client.get("/account/password"))
    wrong = client.post("/account/password", {"current_password": "nope", "password": "brand-new-pass"})
    assert wrong.status_code == 400 and "current password is wrong" in text(wrong)
    short = client.post("/account/password", {"current_password": "password-for-tests", "password": "short"})
    assert short.status_code == 400
    changed = client.post(
        "/account/password", {"current_password": "password-for-tests", "password": "brand-new-pass"}
    )
    assert changed.status_code == 302
    client.post("/logout")
    assert client.login("aud").status_code == 401
    assert client.login("aud", "brand-new-pass").status_code == 302


def test_a_reference_matching_another_customer_is_flagged(enrolled: WebClient):
    result = text(enrolled.post("/enroll", {"customer_id": "twin", "images": [upload(4, 0), upload(3, 6)]}))
    assert "matches_other_customer" in result and "image 2 matches customer &#39;w3&#39;" in result
    page = text(enrolled.get("/customers/twin"))
    assert "reference 5 matches customer &#39;w3&#39;" in page
