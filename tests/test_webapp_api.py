"""The JSON API: every endpoint, API keys, error bodies and statuses, the OpenAPI document, the README."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from flask import Flask

from store.api_keys import create_api_key, disable_api_key
from store.users import set_user_active
from tests.conftest import REPO_ROOT, signature_png
from tests.web import WebClient, add_user

API = "/api/v1"


def image(writer: int, sample: int, forgery: bool = False) -> tuple[io.BytesIO, str]:
    return io.BytesIO(signature_png(writer, sample, forgery)), f"{writer}-{sample}.png"


@pytest.fixture
def keys(app: Flask) -> dict[str, str]:
    """An API key per role."""
    store = app.extensions["sigverify"].store
    found = {}
    for role in ("admin", "operator", "auditor"):
        user = add_user(store, f"api-{role}", role)
        found[role] = create_api_key(store, user.id, f"{role} key")[1]
    return found


@pytest.fixture
def api(client: WebClient, keys: dict[str, str]):  # type: ignore[no-untyped-def]
    """``api(method, path, role="operator", **kwargs)``: a request with that role's key."""

    def call(method: str, path: str, role: str = "operator", **kwargs):  # type: ignore[no-untyped-def]
        return client.api(method, API + path, keys[role], **kwargs)

    return call


def enroll(api, customer: str = "w3", writer: int = 3, count: int = 3):  # type: ignore[no-untyped-def]
    return api(
        "POST", f"/customers/{customer}/references", data={"images": [image(writer, s) for s in range(count)]}
    )


def test_openapi_lists_exactly_the_api_routes(app: Flask, client: WebClient):
    document = client.get(f"{API}/openapi.json").json
    assert document["openapi"].startswith("3.") and "ApiKey" in document["components"]["securitySchemes"]
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served |= {(path, method) for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert documented == served
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', str(document).replace("'", '"')))
    assert refs <= set(document["components"]["schemas"])


def test_readme_api_section_names_every_endpoint(client: WebClient):
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## Web app and API") :]
    for path, item in client.get(f"{API}/openapi.json").json["paths"].items():
        for method in item:
            assert f"{method.upper()} {path}" in section, f"{method.upper()} {path} is not in the README"


def test_keys_missing_invalid_disabled(app: Flask, client: WebClient, keys: dict[str, str]):
    missing = client.api("GET", f"{API}/customers", None)
    assert missing.status_code == 401 and missing.json["error"] == "missing_api_key"
    invalid = client.api("GET", f"{API}/customers", "svk_not-a-key")
    assert invalid.status_code == 401 and invalid.json == {
        "error": "invalid_api_key",
        "message": "the API key is not valid",
    }
    store = app.extensions["sigverify"].store
    user = add_user(store, "temp", "operator")
    record, secret = create_api_key(store, user.id, "temp")
    assert client.api("GET", f"{API}/customers", secret).status_code == 200
    set_user_active(store, user.id, False)
    assert client.api("GET", f"{API}/customers", secret).status_code == 401
    set_user_active(store, user.id, True)
    disable_api_key(store, record.id)
    disabled = client.api("GET", f"{API}/customers", secret)
    assert disabled.status_code == 401 and disabled.json["error"] == "invalid_api_key"
    assert client.get(f"{API}/openapi.json").status_code == 200  # public


def test_session_cookies_do_not_authenticate_the_api(client: WebClient):
    from tests.conftest import ADMIN_PASSWORD

    client.login("admin", ADMIN_PASSWORD)
    assert client.get(f"{API}/customers").status_code == 401


def test_customers_create_get_list_delete(api):  # type: ignore[no-untyped-def]
    created = api("POST", "/customers", json={"customer_id": "c1", "display_name": "Carla"})
    assert created.status_code == 201 and created.json["customer_id"] == "c1"
    assert created.json["reference_count"] == 0
    assert api("POST", "/customers", json={"customer_id": "c1"}).json["error"] == "customer_exists"
    assert api("POST", "/customers", json={"customer_id": "c1"}).status_code == 409
    bad = api("POST", "/customers", json={"customer_id": "no spaces"})
    assert bad.status_code == 422 and bad.json["error"] == "invalid_customer_id"
    assert api("POST", "/customers", json={"customer_id": 7}).status_code == 400
    assert api("POST", "/customers", json={"display_name": "x"}).status_code == 400
    assert api("POST", "/customers", data={"customer_id": "c2"}).status_code == 415
    malformed = api("POST", "/customers", data="{not json", content_type="application/json")
    assert malformed.status_code == 400 and malformed.json["error"] == "bad_request"
    api("POST", "/customers", json={"customer_id": "c2"})
    listed = api("GET", "/customers?limit=1&offset=1", role="auditor").json
    assert listed["total"] == 2 and [c["customer_id"] for c in listed["customers"]] == ["c2"]
    assert api("GET", "/customers?search=carla").json["total"] == 1
    assert api("GET", "/customers?limit=0").status_code == 400
    detail = api("GET", "/customers/c1", role="auditor")
    assert detail.status_code == 200 and detail.json["display_name"] == "Carla"
    assert detail.json["references"] == []
    assert api("GET", "/customers/nobody").status_code == 404
    assert api("DELETE", "/customers/c1").status_code == 403
    deleted = api("DELETE", "/customers/c1", role="admin")
    assert deleted.status_code == 200 and deleted.json == {"customer_id": "c1", "deleted_references": 0}
    assert api("GET", "/customers/c1").json["error"] == "customer_not_found"


def test_references_upload_list_delete(api):  # type: ignore[no-untyped-def]
    enrolled = enroll(api)
    assert enrolled.status_code == 201 and enrolled.json["created"] is True
    assert len(enrolled.json["reference_ids"]) == 3 and enrolled.json["warnings"] == []
    listed = api("GET", "/customers/w3/references", role="auditor").json["references"]
    assert [r["id"] for r in listed] == enrolled.json["reference_ids"]
    duplicate = api("POST", "/customers/w3/references", data={"images": [image(3, 0)]})
    assert duplicate.status_code == 409 and duplicate.json["error"] == "duplicate_reference"
    more = api("POST", "/customers/w3/references", data={"images": [image(8, 0)]})
    assert more.status_code == 201 and more.json["created"] is False
    assert more.json["warnings"][0]["code"] == "inconsistent_reference"
    first = enrolled.json["reference_ids"][0]
    assert api("DELETE", f"/customers/w3/references/{first}").status_code == 403
    assert api("DELETE", f"/customers/w3/references/{first}", role="admin").status_code == 200
    assert api("DELETE", f"/customers/w3/references/{first}", role="admin").status_code == 404
    assert len(api("GET", "/customers/w3/references").json["references"]) == 3


def test_reference_upload_errors(app: Flask, api):  # type: ignore[no-untyped-def]
    assert api("POST", "/customers/w3/references", json={"images": []}).status_code == 415
    none = api("POST", "/customers/w3/references", data={}, content_type="multipart/form-data")
    assert none.status_code == 400 and none.json["error"] == "bad_request"
    text_file = api("POST", "/customers/w3/references", data={"images": [(io.BytesIO(b"hello"), "a.txt")]})
    assert text_file.status_code == 415 and text_file.json["error"] == "undecodable_image"
    blank = api(
        "POST", "/customers/w3/references", data={"images": [(io.BytesIO(signature_png(3, 0)[:60]), "a.png")]}
    )
    assert blank.status_code == 415
    forced = api("POST", "/customers/w3/references", data={"images": [image(3, 0)], "force": "1"})
    assert forced.status_code == 403 and forced.json["error"] == "forbidden"
    store = app.extensions["sigverify"].store
    store.settings = replace(store.settings, max_upload_bytes=500)
    big_image = api("POST", "/customers/w3/references", data={"images": [image(3, 0)]})
    assert big_image.status_code == 413 and big_image.json["error"] == "image_too_large"
    app.config["MAX_CONTENT_LENGTH"] = 500
    big_request = api("POST", "/customers/w3/references", data={"images": [image(3, 0)]})
    assert big_request.status_code == 413 and big_request.json["error"] == "request_too_large"
    assert api("GET", "/customers/w3").status_code == 404  # nothing was stored


def test_blocking_warning_is_422_with_warnings(app: Flask, api):  # type: ignore[no-untyped-def]
    store = app.extensions["sigverify"].store
    store.settings = replace(store.settings, enroll_blocking_warnings="inconsistent_reference")
    images = [image(3, 0), image(3, 1), image(8, 0)]
    refused = api("POST", "/customers/odd/references", data={"images": images})
    assert refused.status_code == 422 and refused.json["error"] == "enrollment_rejected"
    assert refused.json["warnings"][0]["code"] == "inconsistent_reference"
    images = [image(3, 0), image(3, 1), image(8, 0)]
    assert (
        api(
            "POST", "/customers/odd/references", role="admin", data={"images": images, "force": "true"}
        ).status_code
        == 201
    )


def test_verify(api):  # type: ignore[no-untyped-def]
    enroll(api)
    result = api("POST", "/verify", data={"customer_id": "w3", "image": image(3, 5)})
    assert result.status_code == 200
    body = result.json
    assert body["match"] is True and body["score"] >= body["threshold"] and len(body["reference_scores"]) == 3
    assert set(body) == {
        "customer_id",
        "score",
        "match",
        "threshold",
        "reference_scores",
        "best_reference_id",
        "model_version",
        "verification_id",
    }
    forged = api("POST", "/verify", data={"customer_id": "w3", "image": image(3, 5, forgery=True)}).json
    assert forged["match"] is False
    assert (
        api("POST", "/verify", role="auditor", data={"customer_id": "w3", "image": image(3, 5)}).status_code
        == 403
    )


def test_verify_errors(api):  # type: ignore[no-untyped-def]
    api("POST", "/customers", json={"customer_id": "empty"})
    enroll(api)
    cases = [
        ({"customer_id": "nobody", "image": image(3, 5)}, 404, "customer_not_found"),
        ({"customer_id": "empty", "image": image(3, 5)}, 409, "no_references"),
        ({"customer_id": "bad/id", "image": image(3, 5)}, 422, "invalid_customer_id"),
        ({"customer_id": "w3", "image": (io.BytesIO(b"GIF89a"), "x.gif")}, 415, "undecodable_image"),
        ({"image": image(3, 5)}, 400, "bad_request"),
    ]
    for data, status, code in cases:
        response = api("POST", "/verify", data=data)
        assert (response.status_code, response.json["error"]) == (status, code), data
        assert set(response.json) == {"error", "message"}
    assert api("POST", "/verify", json={"customer_id": "empty"}).status_code == 415
    wrong_method = api("GET", "/verify")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]
    assert api("GET", "/nothing-here").json["error"] == "not_found"


def test_compare_and_identify(api):  # type: ignore[no-untyped-def]
    same = api("POST", "/compare", data={"image_a": image(3, 0), "image_b": image(3, 1)}).json
    assert same["match"] is True and 0 <= same["score"] <= 1 and same["model_version"]
    assert api("POST", "/compare", data={"image_a": image(3, 0)}).status_code == 400
    enroll(api)
    enroll(api, "w4", 4)
    found = api("POST", "/identify", data={"image": image(4, 6), "top": "2"})
    assert found.status_code == 200
    assert [c["customer_id"] for c in found.json["candidates"]] == ["w4", "w3"]
    assert api("POST", "/identify", data={"image": image(4, 6), "top": "x"}).status_code == 400


def test_health(api):  # type: ignore[no-untyped-def]
    enroll(api)
    health = api("GET", "/health", role="auditor").json
    assert health == {
        "status": "ok",
        "model_runtime": "fake",  # the test model (tests/fake_model.py)
        "model_version": health["model_version"],
        "index_size": 3,
        "sql_references": 3,
        "other_model_references": 0,
        "consistent": True,
        "stale_reason": None,
        "unsaved_changes": 3,
    }
    schema = api("GET", "/openapi.json").json["components"]["schemas"]["Health"]
    assert set(schema["properties"]) == set(health)  # the published schema names every field


def test_the_app_on_each_database(database_url: str, tmp_path, web_settings, fake_model):  # type: ignore[no-untyped-def]
    """One pass over the API and the pages that query SQL, on SQLite and (when set up) PostgreSQL."""
    from tests.conftest import ADMIN_PASSWORD
    from webapp import create_app

    # the SQLite URL of the database_url fixture lies in tmp_path/var
    app = create_app(web_settings.with_overrides(data_dir=tmp_path / "var", database_url=database_url))
    try:
        store = app.extensions["sigverify"].store
        key = create_api_key(store, add_user(store, "integrator", "admin").id, "k")[1]
        client = WebClient(app.test_client())
        images = {"images": [image(3, s) for s in range(3)], "display_name": "Ann"}
        assert client.api("POST", f"{API}/customers/w3/references", key, data=images).status_code == 201
        verified = client.api("POST", f"{API}/verify", key, data={"customer_id": "w3", "image": image(3, 5)})
        assert verified.json["match"] is True
        assert client.api("GET", f"{API}/customers?search=an", key).json["total"] == 1
        client.login("admin", ADMIN_PASSWORD)
        for page in (
            "/",
            "/customers?q=ANN",
            "/customers/w3",
            "/audit?decision=accept",
            "/audit.csv",
            "/admin/users",
            "/admin/api-keys",
        ):
            response = client.get(page)
            assert response.status_code == 200, page
            assert b"w3" in response.data or page.startswith("/admin"), page
        assert client.api("DELETE", f"{API}/customers/w3", key).json["deleted_references"] == 3
    finally:
        app.extensions["sigverify"].close()
