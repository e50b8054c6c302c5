"""Reading request input: multipart uploads, form fields, query parameters and JSON bodies.

Each helper raises a domain error (400 for a missing or malformed field, 415 for a wrong content
type), so views hold no validation code. The size of a request is capped by ``MAX_CONTENT_LENGTH``
(413 before the view runs); each image is capped again by the services (``max_upload_bytes``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from flask import request

from verify.service import ImageInput
from webapp.errors import BadRequestError, UnsupportedMediaTypeError

MULTIPART = "multipart/form-data"


def require_multipart() -> None:
    """Refuse a request whose body is not ``multipart/form-data`` (415)."""
    if request.mimetype != MULTIPART:
        raise UnsupportedMediaTypeError(
            f"send the images as {MULTIPART}, not {request.mimetype or 'no content type'}"
        )


def uploaded_file(name: str) -> bytes:
    """The bytes of the file field ``name`` (400 when it is missing or empty)."""
    files = _files(name)
    if len(files) != 1:
        raise BadRequestError(f"send exactly one file in the field {name!r}")
    return files[0]


def uploaded_files(name: str) -> list[ImageInput]:
    """The bytes of every file sent in the field ``name``, skipping empty file inputs (400 if none)."""
    return list(_files(name))


def _files(name: str) -> list[bytes]:
    require_multipart()
    files = [upload.read() for upload in request.files.getlist(name) if upload.filename]
    if not files:
        raise BadRequestError(f"no file in the field {name!r}")
    return files


def form_text(name: str, required: bool = True, max_length: int = 200) -> str:
    """A stripped text field of the form (400 when required and empty, or too long)."""
    value = request.form.get(name, "").strip()
    if required and not value:
        raise BadRequestError(f"the field {name!r} is required")
    if len(value) > max_length:
        raise BadRequestError(f"the field {name!r} has more than {max_length} characters")
    return value


def form_flag(name: str) -> bool:
    """A checkbox or boolean form field: 1, true, yes or on."""
    return request.form.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def int_value(source: Any, name: str, default: int, low: int, high: int) -> int:
    """An integer parameter of ``source`` (form or query args) in ``[low, high]`` (400 otherwise)."""
    raw = source.get(name, "")
    if raw in ("", None):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequestError(f"{name!r} must be a whole number") from None
    if not low <= value <= high:
        raise BadRequestError(f"{name!r} must be between {low} and {high}")
    return value


def float_value(source: Any, name: str, low: float, high: float) -> float | None:
    """A number parameter in ``[low, high]``, or None when empty (400 when malformed)."""
    raw = str(source.get(name, "")).strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequestError(f"{name!r} must be a number") from None
    if not low <= value <= high:
        raise BadRequestError(f"{name!r} must be between {low} and {high}")
    return value


def date_value(source: Any, name: str, end_of_day: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` parameter as a UTC time (the next midnight with ``end_of_day``), or None."""
    raw = str(source.get(name, "")).strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequestError(f"{name!r} must be a date like 2024-01-31") from None
    moment = datetime.combine(day, time.min, tzinfo=timezone.utc)
    return moment + timedelta(days=1) if end_of_day else moment


def json_body() -> dict[str, Any]:
    """The request's JSON object (415 when not JSON, 400 when malformed or not an object)."""
    if not request.is_json:
        raise UnsupportedMediaTypeError(f"send application/json, not {request.mimetype or 'no content type'}")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequestError("the body must be a JSON object")
    return data



def json_text(body: dict[str, Any], name: str, required: bool = True, max_length: int = 200) -> str | None:
    """A string member of a JSON object (400 when required and missing, not a string, or too long)."""
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise BadRequestError(f"{name!r} must be a string of at most {max_length} characters")
    return value
