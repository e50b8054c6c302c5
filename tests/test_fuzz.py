"""Generated bad input: Hypothesis bytes and mutated files, a seeded mutation corpus, and atheris.

Properties: ``siamese.preprocess`` returns a valid canvas or raises an ImageError whose code has its
documented status, within the hang bound; an upload endpoint answers 2xx or a clean JSON error with
the right status, never a 500, and a refused request stores nothing. Customer IDs and display names
are accepted exactly when the documented rules say so.

Deterministic for CI: Hypothesis is derandomized (and keeps no example database), the corpus is drawn
from fixed seeds, atheris runs with ``-seed``. Example counts are small on purpose (the whole file runs
in well under a minute on two cores); for a longer search run ``python -m tests.fuzz_preprocess DIR
-max_total_time=600``.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siamese.errors import ImageError
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH, preprocess
from store.settings import Settings
from tests.conftest import REPO_ROOT, signature_png
from tests.hostile_input import (
    HANG_SECONDS,
    UPLOAD_ERRORS,
    api_caller,
    assert_clean_error,
    flip_bits,
    multipart,
    overwrite,
    seed_files,
    splice,
    stored_state,
    swap_header,
    time_bound,
    truncate,
)

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True)
WEB_FUZZ = settings(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MAGIC_NUMBERS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xc2", b"II*\x00", b"MM\x00*",
                 b"GIF89a", b"GIF87a", b"BM", b"RIFF\x00\x00\x00\x00WEBPVP8L"]
Api = Callable[..., Any]


def outcome(data: bytes) -> str:
    """Preprocess ``data`` under the hang bound: ``"ok"`` with a valid canvas, or the ImageError's code."""
    with time_bound():
        try:
            canvas = preprocess(data)
        except ImageError as error:
            assert UPLOAD_ERRORS.get(error.code) == error.http_status, (error.code, error.http_status)
            assert error.message and "object at 0x" not in error.message
            return error.code
    assert canvas.shape == (CANVAS_HEIGHT, CANVAS_WIDTH, 1) and canvas.dtype == np.float32
    assert np.isfinite(canvas).all() and canvas.min() >= 0.0 and canvas.max() <= 1.0
    return "ok"


# --- strategies ------------------------------------------------------------------------------------

any_bytes = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda magic, rest: magic + rest, st.sampled_from(MAGIC_NUMBERS), st.binary(max_size=2048)),
)


def mutation(data: bytes, donors: list[bytes]) -> st.SearchStrategy[bytes]:
    """One mutation of ``data``: truncated, bit-flipped, overwritten, spliced, or another header."""
    offsets, bits = st.integers(0, len(data)), st.integers(0, 8 * len(data) - 1)
    return st.one_of(
        st.builds(truncate, st.just(data), st.floats(0.0, 1.0)),
        st.builds(flip_bits, st.just(data), st.lists(bits, min_size=1, max_size=9)),
        st.builds(overwrite, st.just(data), offsets, st.binary(min_size=1, max_size=8)),
        st.builds(splice, st.just(data), offsets, st.integers(0, 64), st.binary(max_size=9)),
        st.builds(swap_header, st.just(data), st.sampled_from(donors), st.integers(1, 64)),
    )


@st.composite
def mutated_files(draw: st.DrawFn, small: bool = False) -> bytes:
    """A seed file (any accepted format) after one to three mutations."""
    files = seed_files(small)
    data = files[draw(st.sampled_from(sorted(files)))]
    for _ in range(draw(st.integers(1, 3))):
        data = draw(mutation(data, list(files.values())))
    return data


# --- siamese.preprocess ----------------------------------------------------------------------------


@settings(FUZZ, max_examples=1000)
@given(any_bytes)
def test_preprocess_on_arbitrary_bytes(data: bytes) -> None:
    outcome(data)


@settings(FUZZ, max_examples=1000)
@given(mutated_files())
def test_preprocess_on_mutated_files(data: bytes) -> None:
    outcome(data)


def corpus(seed: int = 2024) -> Iterator[tuple[str, bytes]]:
    """A fixed mutation corpus: each seed file truncated at 8 points, with 24 sets of flipped bits, and
    under each other format's header."""
    rng = random.Random(seed)
    files = seed_files()
    for name, data in files.items():
        for cut in range(1, 9):
            yield f"{name} truncated to {cut}/9", truncate(data, cut / 9)
        for flips in range(24):
            positions = [rng.randrange(8 * min(len(data), 4096)) for _ in range(1 + flips)]
            yield f"{name} with bits {positions} flipped", flip_bits(data, positions)
        for donor, other in files.items():
            if donor.split("-")[0] != name.split("-")[0]:
                yield f"{name} under the header of {donor}", swap_header(data, other, 16)


def test_mutation_corpus() -> None:
    """Every mutant is decoded or refused cleanly; the corpus really exercises both outcomes."""
    seen: dict[str, int] = {}
    for name, data in corpus():
        try:
            code = outcome(data)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from None
        seen[code] = seen.get(code, 0) + 1
    assert seen.get("ok", 0) > 20 and seen.get("undecodable_image", 0) > 100, seen


# --- the API's upload endpoints ----------------------------------------------------------------------


@pytest.fixture
def api(app: Flask) -> Api:
    """An operator's API client on ``app``, with customer w3 enrolled (three references)."""
    call = api_caller(app)
    images = [(signature_png(3, sample), f"{sample}.png") for sample in range(3)]
    assert call("POST", "/customers/w3/references", **multipart({"images": images})).status_code == 201
    return call


ENDPOINTS = {
    "enroll": lambda file, number: (f"/customers/fuzz-{number}/references", {"images": [file]}, 201),
    "verify": lambda file, number: ("/verify", {"customer_id": "w3", "image": file}, 200),
    "compare": lambda file, number: ("/compare", {"image_a": (signature_png(3, 7), "a.png"), "image_b": file},
                                     200),
    "identify": lambda file, number: ("/identify", {"image": file, "top": "2"}, 200),
}


@settings(WEB_FUZZ, max_examples=300)
@given(endpoint=st.sampled_from(sorted(ENDPOINTS)), data=st.one_of(mutated_files(), any_bytes))
def test_upload_endpoints_on_generated_files(app: Flask, api: Api, endpoint: str, data: bytes) -> None:
    store = app.extensions["sigverify"].store
    before = stored_state(store)
    path, fields, success = ENDPOINTS[endpoint]((data, "signature.png"), before[0])
    with time_bound():
        response = api("POST", path, **multipart(fields))
    after = stored_state(store)
    if response.status_code == success:
        assert after[3] == after[1], "the index holds every reference"
        return
    if endpoint == "enroll" and response.status_code == 409:  # the same bytes were enrolled before
        assert response.json["error"] == "duplicate_reference"
    else:
        assert_clean_error(response)
    assert after == before, "a refused request stored something"


# --- customer IDs and display names, on SQLite and PostgreSQL ------------------------------------------

VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # the documented rule
FORBIDDEN_IN_NAMES = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
text_samples = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="ascii"), max_size=70),
    st.text(alphabet="ab-_.9 \t\n\x00\u202e\u05d0\u0627é", max_size=8),
    st.from_regex(VALID_ID, fullmatch=True),
)


@pytest.fixture
def db_api(database_url: str, tmp_path: Path, web_settings: Settings, fake_model: Any) -> Iterator[Api]:
    """An operator's API client on a web app whose database is ``database_url``."""
    from webapp import create_app

    app = create_app(web_settings.with_overrides(data_dir=tmp_path / "var", database_url=database_url))
    app.config["TESTING"] = True
    yield api_caller(app)
    app.extensions["sigverify"].close()


@settings(WEB_FUZZ, max_examples=150)
@given(customer_id=text_samples, display_name=st.one_of(text_samples, st.text(min_size=190, max_size=210)))
def test_customer_ids_and_names_follow_the_rules(db_api: Api, customer_id: str, display_name: str) -> None:
    """``POST /customers`` creates exactly the valid (ID, name) pairs; the rest are 422 or 400."""
    response = db_api("POST", "/customers", json={"customer_id": customer_id, "display_name": display_name})
    valid_id = VALID_ID.fullmatch(customer_id) is not None
    valid_name = len(display_name) <= 200 and not FORBIDDEN_IN_NAMES.search(display_name)
    if not valid_id:
        assert (response.status_code, response.json["error"]) == (422, "invalid_customer_id"), response.json
    elif not valid_name:
        assert (response.status_code, response.json["error"]) == (400, "bad_request"), response.json
    else:
        assert response.status_code in (201, 409), response.json  # 409: drawn before
        if response.status_code == 201:
            created = (response.json["customer_id"], response.json["display_name"])
            assert created == (customer_id, display_name or None)


_numbers = count()


@settings(WEB_FUZZ, max_examples=100)
@given(customer_id=text_samples)
def test_verify_form_customer_id(db_api: Api, customer_id: str) -> None:
    """A form's ID is trimmed, then must be valid (422) and known (404); nothing is stored."""
    image = (signature_png(3, 5), f"{next(_numbers)}.png")
    response = db_api("POST", "/verify", **multipart({"customer_id": customer_id, "image": image}))
    trimmed = customer_id.strip()
    expected = (400, "bad_request") if not trimmed else (
        (404, "customer_not_found") if VALID_ID.fullmatch(trimmed) else (422, "invalid_customer_id"))
    assert (response.status_code, response.json["error"]) == expected, response.json


# --- atheris ---------------------------------------------------------------------------------------


def test_atheris_preprocess(tmp_path: Path) -> None:
    """A short, seeded, coverage-guided session over Pillow's parsers (longer runs: see the module)."""
    pytest.importorskip("atheris", reason="atheris is not installed (it has wheels for Linux x86-64, CPython "
                        "3.10-3.13); the Hypothesis and corpus tests above still run")
    command = [sys.executable, "-m", "tests.fuzz_preprocess", str(tmp_path / "corpus"), "-runs=15000",
               "-seed=1", f"-timeout={HANG_SECONDS:.0f}", "-rss_limit_mb=4096", "-max_len=8192",
               f"-artifact_prefix={tmp_path}/"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                          env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"})
    crashes = sorted(path.name for path in tmp_path.iterdir() if path.is_file())
    assert done.returncode == 0 and not crashes, f"atheris found {crashes}:\n{done.stderr[-4000:]}"
    assert "Done 15000 runs" in done.stderr
