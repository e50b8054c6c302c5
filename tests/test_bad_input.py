"""Bad input, case by case: hostile files for ``siamese.preprocess``, the API's upload endpoints and the
operator pages, hostile customer IDs, names and form fields.

Every refused request must answer ``{"error": code, "message": ...}`` with its code's status (the page
shows the message instead), never a 500, within a generous time bound, and store nothing: customer,
reference and verification rows and the FAISS index are counted before and after. Generated cases
(Hypothesis, the mutation corpus, atheris) are in tests/test_fuzz.py.
"""

from __future__ import annotations

import gzip
import io
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from flask import Flask
from PIL import EpsImagePlugin, Image

from siamese.errors import ImageError
from siamese.preprocess import preprocess
from store.settings import Settings
from tests.conftest import ADMIN_PASSWORD, signature_png
from tests.hostile_input import (
    api_caller,
    encode,
    gif_declaring,
    jpeg_with_scans,
    multi_frame,
    multipart,
    png_chunk,
    png_declaring,
    png_with_chunks,
    seed_files,
    stored_state,
    tiff_declaring,
    time_bound,
)
from tests.synthetic import synthetic_signature
from tests.web import WebClient

Api = Callable[..., Any]  # api(method, path, **test client arguments) -> response


def _tiff_with_text_strip_offset() -> bytes:
    """The signature TIFF whose strip offset is a string (found by atheris: Pillow raised TypeError)."""
    data = bytearray(seed_files()["tiff"])
    directory = struct.unpack_from("<I", data, 4)[0]
    for entry in range(struct.unpack_from("<H", data, directory)[0]):
        at = directory + 2 + 12 * entry
        if struct.unpack_from("<H", data, at)[0] == 273:  # StripOffsets, now ASCII "z"
            struct.pack_into("<HI4s", data, at + 2, 2, 2, b"z\0\0\0")
    return bytes(data)


def _tiff_with_corrupt_tag() -> bytes:
    """The signature TIFF with a tag whose data lies past the end of the file (Pillow only warns)."""
    data = bytearray(seed_files()["tiff"])
    directory = struct.unpack_from("<I", data, 4)[0]
    at = directory + 2 + 12 * (struct.unpack_from("<H", data, directory)[0] - 1)  # the last entry
    struct.pack_into("<HHII", data, at, 305, 2, 400, len(data) + 1000)  # Software, ASCII, out of file
    return bytes(data)


@cache
def _zlib_bomb() -> bytes:
    """50 MB of zeros deflated into 49 kB."""
    return zlib.compress(b"\0" * 50_000_000, 9)


def _metadata_bomb(kind: bytes, header: bytes) -> bytes:
    """The signature PNG with a ``kind`` chunk whose compressed text is :func:`_zlib_bomb`."""
    return png_with_chunks(png_chunk(kind, header + _zlib_bomb()))


def _zip_archive() -> bytes:
    """A zip archive holding a PNG and 5 MB of zeros in 5 kB: a 'zip bomb renamed to .png'."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("signature.png", seed_files()["png"])
        archive.writestr("padding.bin", b"\0" * 5_000_000)
    return buffer.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="100"><path d="M10 50 C 40 10, 65 90, 95 50" stroke="black"/></svg>'  # noqa: E501
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"  # noqa: E501
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 50\nnewpath 10 10 moveto 90 40 lineto stroke\nshowpage\n%%EOF\n"  # noqa: E501

# name -> (file, error code). Each is refused by preprocess and by every upload endpoint.
HOSTILE_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty file": (lambda: b"", "undecodable_image"),
    "plain text": (lambda: b"Dear bank, please pay the bearer.\n", "undecodable_image"),
    "svg": (lambda: SVG, "undecodable_image"),
    "pdf": (lambda: PDF, "undecodable_image"),
    "eps (would run Ghostscript)": (lambda: EPS, "undecodable_image"),
    "html": (lambda: b"<html><script>alert(1)</script></html>", "undecodable_image"),
    "zip archive named .png": (_zip_archive, "undecodable_image"),
    "gzip of a png": (lambda: gzip.compress(seed_files()["png"]), "undecodable_image"),
    "png signature only": (lambda: b"\x89PNG\r\n\x1a\n", "undecodable_image"),
    "truncated png": (lambda: seed_files()["png"][:400], "undecodable_image"),
    "truncated jpeg": (lambda: seed_files()["jpeg"][:1500], "undecodable_image"),
    "tiff with a text strip offset": (_tiff_with_text_strip_offset, "undecodable_image"),
    "png declaring 50000x50000": (lambda: png_declaring(50_000, 50_000), "image_too_large"),
    "png declaring 7000x7000": (lambda: png_declaring(7_000, 7_000), "image_too_large"),
    "zlib bomb png 6400x6400": (lambda: png_declaring(6_400, 6_400, rows=6_400), "image_too_large"),
    "gif declaring 50000x50000": (lambda: gif_declaring(50_000, 50_000), "image_too_large"),
    "tiff declaring 50000x50000": (lambda: tiff_declaring(50_000, 50_000), "image_too_large"),
    "tiff declaring 7000x7000": (lambda: tiff_declaring(7_000, 7_000), "image_too_large"),
    "png zTXt bomb": (lambda: _metadata_bomb(b"zTXt", b"Comment\0\0"), "image_too_large"),
    "png iTXt bomb": (lambda: _metadata_bomb(b"iTXt", b"Comment\0\1\0\0\0"), "image_too_large"),
    "png iCCP bomb": (lambda: _metadata_bomb(b"iCCP", b"icc\0\0"), "image_too_large"),
    "png with 100 zTXt chunks of 900 kB": (
        lambda: png_with_chunks(*[png_chunk(b"zTXt", b"k%d\0\0" % n + zlib.compress(b"z" * 900_000))
                                  for n in range(100)]),
        "image_too_large",
    ),
    "jpeg with 150 scans": (lambda: jpeg_with_scans(150), "image_too_large"),
    "blank page": (lambda: encode(Image.new("L", (400, 200), 255), "PNG"), "no_ink"),
    "animated gif with a blank first frame": (
        lambda: multi_frame(Image.new("L", (320, 140), 255), [synthetic_signature(1, 1)], "GIF"), "no_ink"),
    "multi-page tiff with a blank first page": (
        lambda: multi_frame(Image.new("L", (320, 140), 255), [synthetic_signature(1, 1)], "TIFF"), "no_ink"),
    "12 x 12 pixels": (lambda: encode(Image.new("L", (12, 12), 0), "PNG"), "image_too_small"),
}
# The status of each code (the contract the README lists).
STATUS = {"undecodable_image": 415, "image_too_large": 413, "no_ink": 422, "image_too_small": 422}


# --- preprocess, directly -----------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_preprocess_refuses_hostile_files(name: str) -> None:
    make, code = HOSTILE_FILES[name]
    data = make()
    with time_bound(), pytest.raises(ImageError) as caught:
        preprocess(data)
    assert (caught.value.code, caught.value.http_status) == (code, STATUS[code]), caught.value.message
    assert "object at 0x" not in caught.value.message  # Pillow's "cannot identify" names an address


def test_eps_never_reaches_ghostscript(monkeypatch: pytest.MonkeyPatch) -> None:
    def ghostscript(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an upload was handed to Ghostscript")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    with pytest.raises(ImageError, match="not an image in a supported format"):
        preprocess(EPS)


def _first_frame_canvas() -> np.ndarray:
    """The canvas of writer 1's signature (frame 0 of the multi-frame files below)."""
    return preprocess(synthetic_signature(1, 1))


TOLERATED: dict[str, Callable[[], bytes]] = {
    "png with a 5 MB tEXt chunk": lambda: png_with_chunks(png_chunk(b"tEXt", b"Note\0" + b"x" * 5_000_000)),
    "png with 2000 tEXt chunks": lambda: png_with_chunks(*[png_chunk(b"tEXt", b"k%d\0" % n + b"y" * 2000)
                                                           for n in range(2000)]),
    "png with a small zTXt": lambda: png_with_chunks(
        png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"signed at the branch"))),
    "animated gif": lambda: multi_frame(synthetic_signature(1, 1), [synthetic_signature(5, 1)], "GIF"),
    "multi-page tiff": lambda: multi_frame(synthetic_signature(1, 1), [synthetic_signature(5, 2)], "TIFF"),
    "tiff with a corrupt tag": _tiff_with_corrupt_tag,
}


@pytest.mark.parametrize("name", TOLERATED)
def test_odd_but_valid_files_give_the_signature(name: str) -> None:
    """Metadata, extra frames and pages are ignored: the canvas is the first frame's."""
    with time_bound():
        canvas = preprocess(TOLERATED[name]())
    assert float(np.abs(canvas - _first_frame_canvas()).mean()) < 0.006  # JPEG's loss at most


def test_a_jpeg_with_a_few_dozen_scans_is_decoded() -> None:
    """The scan limit leaves room: 46 scans are decoded, and this blank page is then judged on its ink."""
    with time_bound(), pytest.raises(ImageError) as caught:
        preprocess(jpeg_with_scans(40))
    assert caught.value.code == "no_ink"


def test_zlib_bomb_within_the_pixel_limit_is_decoded_in_bounded_time() -> None:
    """39 Mpx in 60 kB: allowed (a 600 dpi A4 scan is 35 Mpx), so it costs one full decode, bounded."""
    with time_bound(), pytest.raises(ImageError) as caught:
        preprocess(png_declaring(6_200, 6_200, rows=6_200))
    assert caught.value.code == "no_ink"


@pytest.mark.parametrize("action", ["error", "ignore", "default"])
def test_outcome_does_not_depend_on_warning_filters(action: str) -> None:
    """Pillow warns about corrupt TIFF tags; under ``-W error`` that used to escape as a 500."""
    with warnings.catch_warnings():
        warnings.simplefilter(action)  # type: ignore[arg-type]
        canvas = preprocess(_tiff_with_corrupt_tag())
    assert np.array_equal(canvas, _first_frame_canvas())


# --- the API --------------------------------------------------------------------------------------


@pytest.fixture
def api(app: Flask) -> Api:
    """``api(method, path, **kwargs)``: an API request with an operator's key."""
    return api_caller(app)


@pytest.fixture
def enrolled(app: Flask, api: Api) -> Flask:
    """Customer w3 with three references, so that verify and identify have something to compare."""
    images = [(signature_png(3, sample), f"{sample}.png") for sample in range(3)]
    assert api("POST", "/customers/w3/references", **multipart({"images": images})).status_code == 201
    return app


def _upload(endpoint: str, file: tuple[bytes, str]) -> tuple[str, dict[str, Any]]:
    """Path and multipart fields that send ``file`` to one upload endpoint."""
    good = (signature_png(3, 7), "good.png")
    fields = {
        "enroll": ("/customers/new-1/references", {"images": [good, file]}),
        "verify": ("/verify", {"customer_id": "w3", "image": file}),
        "compare": ("/compare", {"image_a": good, "image_b": file}),
        "identify": ("/identify", {"image": file, "top": "3"}),
    }
    return fields[endpoint]


def _assert_refused(response: Any, code: str, status: int, app: Flask, before: tuple[int, ...],
                    case: str = "") -> None:
    """A clean JSON error with this code and status, and nothing stored (``case`` names the input)."""
    body = response.get_json(silent=True)
    assert response.status_code == status, (case, response.status_code, response.data[:300])
    assert isinstance(body, dict), (case, response.data[:300])
    assert body["error"] == code and set(body) == {"error", "message"}, (case, body)
    assert body["message"] and "Traceback" not in body["message"]
    assert stored_state(app.extensions["sigverify"].store) == before, case


@pytest.mark.parametrize("endpoint", ["enroll", "verify", "compare", "identify"])
def test_api_refuses_hostile_uploads(enrolled: Flask, api: Api, endpoint: str) -> None:
    before = stored_state(enrolled.extensions["sigverify"].store)
    for name, (make, code) in HOSTILE_FILES.items():
        path, fields = _upload(endpoint, (make(), "signature.png"))
        with time_bound():
            response = api("POST", path, **multipart(fields))
        _assert_refused(response, code, STATUS[code], enrolled, before, name)


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"customer_id": "w3", "image": "iVBORw0KGgo="}}, 415, "unsupported_media_type"),
        ({"data": {"customer_id": "w3"}, "content_type": "application/x-www-form-urlencoded"}, 415,
         "unsupported_media_type"),
        ({"data": signature_png(3, 7), "content_type": "image/png"}, 415, "unsupported_media_type"),
        ({"data": signature_png(3, 7), "content_type": "text/plain"}, 415, "unsupported_media_type"),
        ({"data": signature_png(3, 7)}, 415, "unsupported_media_type"),
        ({"data": b"abc", "content_type": "multipart/form-data"}, 400, "bad_request"),  # no boundary
        ({"data": b"--xx\r\ngarbage\r\n\r\n--", "content_type": "multipart/form-data; boundary=xx"}, 400,
         "bad_request"),
        ({"data": b"\xff" * 5000, "content_type": "multipart/form-data; boundary=xx"}, 400, "bad_request"),
    ],
    ids=["json", "urlencoded", "raw png", "text/plain", "no content type", "no boundary", "malformed parts",
         "binary junk"],
)
def test_api_wrong_content_types(enrolled: Flask, api: Api, kwargs: dict[str, Any], status: int, code: str):
    before = stored_state(enrolled.extensions["sigverify"].store)
    for path in ("/verify", "/compare", "/identify", "/customers/new-1/references"):
        _assert_refused(api("POST", path, **kwargs), code, status, enrolled, before)


def test_the_file_content_decides_not_its_name_or_declared_type(enrolled: Flask, api: Api) -> None:
    """A PNG named .txt (or sent as application/pdf) is a PNG; an SVG named .png is refused."""
    values = {"customer_id": "w3", "image": (io.BytesIO(signature_png(3, 7)), "scan.txt", "application/pdf")}
    accepted = api("POST", "/verify", data=values)
    assert accepted.status_code == 200 and accepted.json["match"] is True
    before = stored_state(enrolled.extensions["sigverify"].store)
    refused = api("POST", "/verify", **multipart({"customer_id": "w3", "image": (SVG, "scan.png")}))
    _assert_refused(refused, "undecodable_image", 415, enrolled, before)


def test_empty_and_missing_file_fields(enrolled: Flask, api: Api) -> None:
    before = stored_state(enrolled.extensions["sigverify"].store)
    _assert_refused(api("POST", "/verify", **multipart({"customer_id": "w3", "image": (b"", "empty.png")})),
                    "undecodable_image", 415, enrolled, before)
    no_name = api("POST", "/verify", data={"customer_id": "w3", "image": (io.BytesIO(b"x"), "")})
    _assert_refused(no_name, "bad_request", 400, enrolled, before)  # a browser's empty file input
    _assert_refused(api("POST", "/verify", **multipart({"customer_id": "w3"})), "bad_request", 400, enrolled,
                    before)
    twice = [(signature_png(3, 7), "a.png")] * 2
    two = api("POST", "/verify", **multipart({"customer_id": "w3", "image": twice}))
    _assert_refused(two, "bad_request", 400, enrolled, before)


@pytest.mark.parametrize("image_format", ["GIF", "TIFF"])
def test_multi_frame_files_verify_as_their_first_frame(enrolled: Flask, api: Api,
                                                       image_format: str) -> None:
    first = synthetic_signature(3, 7)
    alone = encode(first, image_format)
    single = api("POST", "/verify", **multipart({"customer_id": "w3", "image": (alone, "a")}))
    frames = multi_frame(first, [synthetic_signature(8, 1), synthetic_signature(9, 1)], image_format)
    multi = api("POST", "/verify", **multipart({"customer_id": "w3", "image": (frames, "b")}))
    assert single.status_code == multi.status_code == 200
    assert multi.json["score"] == pytest.approx(single.json["score"], abs=1e-6)


def test_oversized_fields_and_requests(app: Flask, enrolled: Flask, api: Api) -> None:
    store = app.extensions["sigverify"].store
    before = stored_state(store)
    image = (signature_png(3, 7), "a.png")
    cases = [  # (fields, code): Werkzeug caps a text field at 500 kB and a form at 1000 parts
        ({"customer_id": "w3" + "x" * 600_000, "image": image}, "request_too_large"),
        ({**{f"f{n}": "x" for n in range(1200)}, "customer_id": "w3", "image": image}, "request_too_large"),
        ({"customer_id": "w3", "image": image, "top": "9" * 5000}, "bad_request"),
    ]
    for fields, code in cases:
        response = api("POST", "/identify" if "top" in fields else "/verify", **multipart(fields))
        _assert_refused(response, code, 413 if code == "request_too_large" else 400, app, before)
    many = [(signature_png(4, sample), f"{sample}.png") for sample in range(21)]
    refused = api("POST", "/customers/new-1/references", **multipart({"images": many}))
    assert refused.status_code == 422 and refused.json["error"] == "enrollment_rejected"
    assert stored_state(store) == before
    store.settings = replace(store.settings, max_upload_bytes=500)
    fields = multipart({"customer_id": "w3", "image": image})
    _assert_refused(api("POST", "/verify", **fields), "image_too_large", 413, app, before)
    app.config["MAX_CONTENT_LENGTH"] = 500
    _assert_refused(api("POST", "/verify", **fields), "request_too_large", 413, app, before)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("[" * 100_000 + "]" * 100_000, "application/json"),
        ('{"customer_id": "c1", "display_name": "caf\xe9"}'.encode("latin-1"), "application/json"),
        ('["c1"]', "application/json"),
        ('{"customer_id": ["c1"]}', "application/json"),
        ('{"customer_id": "c1", "display_name": 7}', "application/json"),
        ('{"customer_id": 1e999}', "application/json"),
        ('{"customer_id": "c1", "display_name": "' + "n" * 201 + '"}', "application/json"),
    ],
    ids=["nested 100000 deep", "not utf-8", "array", "id not a string", "name not a string", "huge number",
         "name too long"],
)
def test_malformed_json_bodies(app: Flask, api: Api, body: str | bytes, content_type: str) -> None:
    before = stored_state(app.extensions["sigverify"].store)
    response = api("POST", "/customers", data=body, content_type=content_type)
    _assert_refused(response, "bad_request", 400, app, before)


# --- customer IDs, display names and search text, on SQLite and PostgreSQL ----------------------


@pytest.fixture
def db_app(database_url: str, tmp_path: Path, web_settings: Settings, fake_model: Any) -> Iterator[Flask]:
    """The web app on the ``database_url`` database (PostgreSQL refuses NUL where SQLite stores it)."""
    from webapp import create_app

    app = create_app(web_settings.with_overrides(data_dir=tmp_path / "var", database_url=database_url))
    app.config["TESTING"] = True
    yield app
    app.extensions["sigverify"].close()


@pytest.fixture
def db_api(db_app: Flask) -> Api:
    """``db_api(method, path, **kwargs)`` with an operator's key on ``db_app``."""
    return api_caller(db_app)


# Customer IDs are ASCII letters, digits, '.', '_' and '-', 1 to 64 characters, starting with a letter or
# digit. Unicode is refused on purpose: IDs go into URLs, file names, CSV exports and the command line,
# and two IDs that look alike (Latin "a" and Cyrillic "а", NFC and NFD "é") must not name two customers.
INVALID_IDS = {
    "hebrew (rtl)": "שלום",
    "arabic (rtl) with digits": "عميل-42",
    "latin with accent": "müller",
    "cyrillic look-alike": "cаrla",
    "fullwidth": "ｃ１",
    "right-to-left override": "abc\u202edcba",
    "zero-width space": "ab\u200bcd",
    "nul": "ab\x00cd",
    "tab inside": "ab\tcd",
    "delete": "ab\x7f",
    "c1 control (nel)": "ab\x85cd",
    "slash": "a/b",
    "space inside": "a b",
    "leading dot": ".hidden",
    "html": "<script>alert(1)</script>",
    "65 characters": "a" * 65,
    "100000 characters": "a" * 100_000,
}
VALID_IDS = ["a", "A.b_c-9", "9" * 64, "cust-00042"]


def test_invalid_customer_ids_are_422_everywhere(db_app: Flask, db_api: Api) -> None:
    before = stored_state(db_app.extensions["sigverify"].store)
    image = (signature_png(4, 0), "a.png")
    for name, customer_id in INVALID_IDS.items():
        created = db_api("POST", "/customers", json={"customer_id": customer_id})
        _assert_refused(created, "invalid_customer_id", 422, db_app, before, name)
        verified = db_api("POST", "/verify", **multipart({"customer_id": customer_id, "image": image}))
        _assert_refused(verified, "invalid_customer_id", 422, db_app, before, name)
        if "/" in customer_id or len(customer_id) > 10_000:  # a slash is another route; URLs have limits
            continue
        path = "/customers/" + quote(customer_id, safe="")
        enrolled = db_api("POST", path + "/references", **multipart({"images": [image]}))
        _assert_refused(enrolled, "invalid_customer_id", 422, db_app, before, name)
        _assert_refused(db_api("GET", path), "invalid_customer_id", 422, db_app, before, name)


def test_valid_edge_ids_and_surrounding_spaces(db_api: Api) -> None:
    for number, customer_id in enumerate(VALID_IDS):
        images = {"images": [(signature_png(20 + number, 0), "a.png")]}
        assert db_api("POST", f"/customers/{customer_id}/references", **multipart(images)).status_code == 201
    query = multipart({"customer_id": "  a\n", "image": (signature_png(20, 1), "q.png")})
    verified = db_api("POST", "/verify", **query)
    assert verified.status_code == 200 and verified.json["customer_id"] == "a"  # form fields are trimmed


# Display names are free text: any script, right-to-left included, HTML too (it is escaped when shown),
# at most 200 characters; no control character, lone surrogate or bidirectional override.
GOOD_NAMES = ["Zoë Ångström", "שרה כהן", "محمد بن سلمان", "王小明", "O'Brien & Sons <Ltd>", "😀 emoji"]
BAD_NAMES = {
    "nul": "Ann\x00e",
    "newline inside": "Ann\nSmith",
    "escape sequence": "Ann\x1b[31m",
    "c1 control": "Ann\x9b",
    "right-to-left override": "Ann\u202eeno",
    "isolate": "Ann\u2066x\u2069",
    "201 characters": "n" * 201,
}


def test_display_names_in_any_script_round_trip(db_api: Api) -> None:
    for number, name in enumerate(GOOD_NAMES):
        created = db_api("POST", "/customers", json={"customer_id": f"c{number}", "display_name": name})
        assert created.status_code == 201 and created.json["display_name"] == name, name
        image = (signature_png(30 + number, 0), "a.png")
        enrolled = db_api("POST", f"/customers/e{number}/references",
                          **multipart({"display_name": name, "images": [image]}))
        assert enrolled.status_code == 201, (name, enrolled.json)
        assert db_api("GET", f"/customers/e{number}").json["display_name"] == name


def test_bad_display_names_are_400_and_store_nothing(db_app: Flask, db_api: Api) -> None:
    before = stored_state(db_app.extensions["sigverify"].store)
    for name, value in BAD_NAMES.items():
        created = db_api("POST", "/customers", json={"customer_id": "c1", "display_name": value})
        _assert_refused(created, "bad_request", 400, db_app, before, name)
        enrolled = db_api("POST", "/customers/c2/references",
                          **multipart({"display_name": value, "images": [(signature_png(5, 0), "a.png")]}))
        _assert_refused(enrolled, "bad_request", 400, db_app, before, name)


def test_lone_surrogate_in_json_is_400(db_app: Flask, db_api: Api) -> None:
    """JSON may spell a lone surrogate ("\\ud800"); it cannot be encoded, so SQL used to fail with a 500."""
    before = stored_state(db_app.extensions["sigverify"].store)
    for body, code, status in [('{"customer_id": "c\\ud800"}', "invalid_customer_id", 422),
                               ('{"customer_id": "c1", "display_name": "\\udfff"}', "bad_request", 400)]:
        response = db_api("POST", "/customers", data=body, content_type="application/json")
        _assert_refused(response, code, status, db_app, before, body)


@pytest.mark.parametrize("value", ["a%00b", "a%1Bb", "a%C2%9Bb"], ids=["nul", "escape", "c1"])
def test_search_text_with_control_characters_is_400(db_app: Flask, db_api: Api, value: str) -> None:
    response = db_api("GET", f"/customers?search={value}")
    assert response.status_code == 400 and response.json["error"] == "bad_request"
    admin = WebClient(db_app.test_client())
    admin.login("admin", ADMIN_PASSWORD)
    assert admin.get(f"/customers?q={value}").status_code == 400
    assert admin.get(f"/audit?customer={value}").status_code == 400


def test_login_with_hostile_fields(db_app: Flask) -> None:
    client = WebClient(db_app.test_client())
    assert client.login("adm\x00in", ADMIN_PASSWORD).status_code == 400
    response = client.login("admin", ADMIN_PASSWORD, next="/customers\r\nSet-Cookie: stolen=1")
    assert response.status_code == 302 and response.headers["Location"] == "/"  # not followed, not a 500
    assert "stolen" not in response.headers.get("Set-Cookie", "")


# --- the pages ------------------------------------------------------------------------------------

SCRIPT = '<script>alert("owned")</script>'


@pytest.fixture
def admin(client: WebClient) -> WebClient:
    """The test client logged in as the first admin."""
    assert client.login("admin", ADMIN_PASSWORD).status_code == 302
    return client


def _assert_escaped(html: str) -> None:
    """The name shows escaped; the raw tag never appears."""
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html


def test_pages_escape_html_in_names_and_parameters(app: Flask, admin: WebClient, api: Api) -> None:
    images = [(io.BytesIO(signature_png(3, sample)), f"{sample}.png") for sample in range(3)]
    result = admin.post("/enroll", {"customer_id": "w3", "display_name": SCRIPT, "images": images})
    assert result.status_code == 200 and "<script>alert" not in result.get_data(as_text=True)
    image_tag = f"<img src=x onerror=alert(1)>{SCRIPT}"
    api("POST", "/customers", json={"customer_id": "w4", "display_name": image_tag})
    pages = ["/customers", "/customers/w3", "/customers/w4", f"/customers?q={SCRIPT}",
             f"/audit?customer={SCRIPT}", f"/enroll?customer_id={SCRIPT}", f"/verify?customer_id={SCRIPT}"]
    for page in pages:
        response = admin.get(page)
        assert response.status_code == 200, page
        _assert_escaped(response.get_data(as_text=True))
    assert "<img src=x" not in admin.get("/customers/w4").get_data(as_text=True)
    refused = admin.get("/customers/" + quote("<img src=x onerror=alert(1)>"))  # echoed in the message
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "<img src=x" not in html and "&lt;img src=x" in html


PAGE_UPLOADS = {
    "/enroll": lambda file: {"customer_id": "new-1", "display_name": SCRIPT, "images": [file]},
    "/verify": lambda file: {"customer_id": "w3", "image": file},
    "/compare": lambda file: {"image_a": (io.BytesIO(signature_png(3, 7)), "a.png"), "image_b": file},
    "/identify": lambda file: {"image": file},
}


@pytest.mark.parametrize("page", PAGE_UPLOADS)
def test_pages_refuse_hostile_uploads(app: Flask, enrolled: Flask, admin: WebClient, page: str) -> None:
    before = stored_state(app.extensions["sigverify"].store)
    for name, (make, code) in HOSTILE_FILES.items():
        with time_bound():
            response = admin.post(page, PAGE_UPLOADS[page]((io.BytesIO(make()), "signature.png")))
        html = response.get_data(as_text=True)
        assert response.status_code == STATUS[code], (name, html[:500])
        assert code in html and "Traceback" not in html and "<script>alert" not in html, name
        assert stored_state(app.extensions["sigverify"].store) == before, name


def test_pages_refuse_invalid_ids_and_names(app: Flask, admin: WebClient) -> None:
    before = stored_state(app.extensions["sigverify"].store)
    for fields, status in [
        ({"customer_id": "שלום"}, 422),
        ({"customer_id": "a" * 65}, 422),
        ({"customer_id": "ok", "display_name": "x\x00y"}, 400),
        ({"customer_id": "ok", "display_name": "x" * 201}, 400),
    ]:
        image = (io.BytesIO(signature_png(3, 0)), "a.png")
        assert admin.post("/enroll", {**fields, "images": [image]}).status_code == status, fields
    image = (io.BytesIO(signature_png(3, 0)), "a.png")
    assert admin.post("/verify", {"customer_id": "a\x01", "image": image}).status_code == 422
    assert stored_state(app.extensions["sigverify"].store) == before
