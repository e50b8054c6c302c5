"""Hostile inputs for the bad-input and fuzz tests: a seed corpus, mutations, bombs, and the checks.

The corpus is drawn from the synthetic signatures (nothing is read from disk). The checks are the
properties every upload must keep: a refused request answers ``{"error": code, "message": text}``
with the status of its code, never a 500, within a generous time bound, and stores nothing.
"""

from __future__ import annotations

import io
import signal
import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from store.database import Store
from store.schema import Customer, Reference, Verification
from tests.synthetic import synthetic_signature

# A hang guard, not a speed target: the worst accepted image (40 Mpx) takes about 2.5 s on an idle
# core, so only a runaway decoder gets near this.
HANG_SECONDS = 30.0

# The status of every error code an upload may answer with.
UPLOAD_ERRORS = {
    "bad_request": 400,
    "request_too_large": 413,
    "image_too_large": 413,
    "unsupported_media_type": 415,
    "undecodable_image": 415,
    "invalid_customer_id": 422,
    "no_ink": 422,
    "image_too_small": 422,
    "enrollment_rejected": 422,
}


class HangError(BaseException):
    """Raised by the alarm of :func:`time_bound` (a BaseException, so no handler can swallow it)."""


@contextmanager
def time_bound(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail the test when the block runs longer than ``seconds`` (interrupted by SIGALRM if it can be)."""

    def expire(signum: int, frame: Any) -> None:
        raise HangError(f"still running after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.1f} s (the bound is {seconds:.0f} s)"


def stored_state(store: Store) -> tuple[int, int, int, int]:
    """Customer, reference and verification row counts, and the FAISS index size."""
    with store.sessions() as session:
        rows = [int(session.scalar(select(func.count()).select_from(table)) or 0)
                for table in (Customer, Reference, Verification)]
    return rows[0], rows[1], rows[2], len(store.index) if store.index is not None else 0


def assert_clean_error(response: TestResponse, code: str | None = None) -> str:
    """Assert an API error body ``{"error", "message"}`` whose status is its code's; returns the code."""
    body = response.get_json(silent=True)
    assert isinstance(body, dict), f"{response.status_code}: not JSON: {response.data[:200]!r}"
    assert response.status_code == UPLOAD_ERRORS.get(body.get("error")), (response.status_code, body)
    assert set(body) - {"warnings"} == {"error", "message"}, body
    assert isinstance(body["message"], str) and body["message"] and "Traceback" not in body["message"]
    if code is not None:
        assert body["error"] == code, body
    return str(body["error"])


def multipart(fields: dict[str, Any]) -> dict[str, Any]:
    """Test-client keyword arguments that send ``fields`` as a prebuilt multipart body.

    Values are strings, ``(bytes, filename)`` pairs, or lists of either. Building the body here keeps
    the test client from spooling large bodies to temporary files it never closes.
    """
    values: dict[str, Any] = {}
    for name, value in fields.items():
        items = value if isinstance(value, list) else [value]
        values[name] = [FileStorage(io.BytesIO(item[0]), item[1]) if isinstance(item, tuple) else item
                        for item in items]
    boundary, body = encode_multipart(values)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def encode(image: Image.Image, image_format: str, **params: Any) -> bytes:
    """``image`` saved in ``image_format`` with Pillow's save parameters."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **params)
    return buffer.getvalue()


@cache
def seed_files(small: bool = False) -> dict[str, bytes]:
    """A signature (writer 1) in every accepted format and a few encodings of each.

    ``small`` draws it at 96 x 42 pixels instead of 320 x 140: kilobyte-sized files for fast fuzzing.
    """
    size = (96, 42) if small else (320, 140)
    signature, other = synthetic_signature(1, 1, size=size), synthetic_signature(2, 1, size=size)
    return {
        "png": encode(signature, "PNG"),
        "png-rgba": encode(signature.convert("RGBA"), "PNG"),
        "jpeg": encode(signature, "JPEG", quality=90),
        "jpeg-progressive": encode(signature.convert("RGB"), "JPEG", quality=90, progressive=True),
        "tiff": encode(signature, "TIFF"),
        "tiff-lzw": encode(signature, "TIFF", compression="tiff_lzw"),
        "tiff-deflate": encode(signature, "TIFF", compression="tiff_adobe_deflate"),
        "tiff-multipage": encode(signature, "TIFF", save_all=True, append_images=[other]),
        "gif-animated": encode(signature, "GIF", save_all=True, append_images=[other]),
        "bmp": encode(signature, "BMP"),
        "webp": encode(signature, "WEBP", lossless=True),
    }


# --- mutations: each is a pure function of its arguments, so Hypothesis can draw and shrink them ---


def truncate(data: bytes, keep: float) -> bytes:
    """The first ``keep`` fraction of ``data`` (at least one byte)."""
    return data[: max(1, int(len(data) * keep))]


def flip_bits(data: bytes, positions: list[int]) -> bytes:
    """``data`` with the bits at ``positions`` (taken modulo its bit length) flipped."""
    mutated = bytearray(data)
    for position in positions:
        bit = position % (8 * len(mutated))
        mutated[bit // 8] ^= 1 << (bit % 8)
    return bytes(mutated)


def overwrite(data: bytes, offset: int, patch: bytes) -> bytes:
    """``data`` with ``patch`` written at ``offset`` (modulo its length)."""
    start = offset % len(data)
    return data[:start] + patch + data[start + len(patch):]


def swap_header(data: bytes, donor: bytes, length: int) -> bytes:
    """The first ``length`` bytes of ``donor`` on the rest of ``data``: a file of one format posing
    as another."""
    return donor[:length] + data[length:]


def splice(data: bytes, offset: int, cut: int, insert: bytes) -> bytes:
    """``data`` with ``cut`` bytes removed at ``offset`` (modulo its length) and ``insert`` put there."""
    start = offset % len(data)
    return data[:start] + insert + data[start + cut:]


# --- files built by hand: bombs and odd chunks ------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def png_with_chunks(*chunks: bytes, image: bytes | None = None) -> bytes:
    """A PNG (the signature by default) with ``chunks`` inserted right after its IHDR chunk."""
    png = image or seed_files()["png"]
    after_header = 8 + 25  # the signature, then IHDR: length, type, 13 bytes, CRC
    return png[:after_header] + b"".join(chunks) + png[after_header:]


def png_declaring(width: int, height: int, rows: int = 0) -> bytes:
    """A gray PNG whose header claims ``width`` x ``height``; ``rows`` rows of real (blank) data follow.

    With ``rows == height`` it is a zlib bomb: a few kilobytes that decompress to the full image.
    """
    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * width  # filter byte, then white pixels
    pixels = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def gif_declaring(width: int, height: int) -> bytes:
    """A GIF whose logical screen and only frame claim ``width`` x ``height`` (the data is one pixel)."""
    screen = b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00" + b"\x02\x02\x44\x01\x00"
    return screen + frame + b"\x3b"


def tiff_declaring(width: int, height: int) -> bytes:
    """The signature TIFF with its width and length tags rewritten to ``width`` x ``height``."""
    data = bytearray(seed_files()["tiff"])
    assert data[:4] == b"II*\x00", "Pillow writes little-endian TIFF"
    directory = struct.unpack_from("<I", data, 4)[0]
    for entry in range(struct.unpack_from("<H", data, directory)[0]):
        at = directory + 2 + 12 * entry
        tag = struct.unpack_from("<H", data, at)[0]
        if tag in (256, 257):  # ImageWidth, ImageLength: one LONG each
            struct.pack_into("<HII", data, at + 2, 4, 1, width if tag == 256 else height)
    return bytes(data)


def jpeg_with_scans(extra_scans: int, side: int = 1000) -> bytes:
    """A progressive JPEG of a blank ``side``-pixel page whose last scan is repeated ``extra_scans``
    times: each repeat costs the decoder a pass over every pixel (a CPU bomb in a few kilobytes)."""
    data = encode(Image.new("L", (side, side), 255), "JPEG", progressive=True, quality=50)
    last_scan = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    return data[:end] + data[last_scan:end] * extra_scans + data[end:]


def multi_frame(first: Image.Image, rest: list[Image.Image], image_format: str) -> bytes:
    """An animated GIF or multi-page TIFF: ``first``, then ``rest``."""
    return encode(first, image_format, save_all=True, append_images=rest)


# --- clients ----------------------------------------------------------------------------------------

API = "/api/v1"


def api_caller(app: Any, role: str = "operator") -> Any:
    """``call(method, path, **test client arguments)``: API requests with a new key of ``role``."""
    from store.api_keys import create_api_key
    from tests.web import WebClient, add_user

    store = app.extensions["sigverify"].store
    key = create_api_key(store, add_user(store, f"api-{role}", role).id, role)[1]
    client = WebClient(app.test_client())
    return lambda method, path, **kwargs: client.api(method, API + path, key, **kwargs)
