"""Reading request input: multipart uploads, form fields, query parameters and JSON bodies.

Each helper raises a domain error (400 for a missing or malformed field, 415 for a wrong content
type, 422 for an invalid customer ID), so views hold no validation code. The size of a request is
capped by ``MAX_CONTENT_LENGTH`` (413 before the view runs), a form's text fields by Werkzeug's
``MAX_FORM_MEMORY_SIZE`` and ``MAX_FORM_PARTS`` (413); each image is capped again by the services
(``max_upload_bytes``).

Text: no field or search parameter may hold a control character (C0, DEL or C1: NUL cannot even be
stored by PostgreSQL) or a lone surrogate (JSON ``"\ud800"``, not encodable as UTF-8); a display
name may also not hold the bidirectional override, embedding or isolate controls, which make a name
display as another. Letters of any script, right-to-left ones included, are fine in names; customer
IDs are ASCII (see ``store.customers.validate_customer_id``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from flask import request

from store.customers import validate_customer_id
from verify.service import ImageInput
from webapp.errors import BadRequestError, UnsupportedMediaTypeError

MULTIPART = "multipart/form-data"
DISPLAY_NAME_MAX_LENGTH = 200
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


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
    """A stripped text field of the form (400 when required and empty, too long, or unsafe)."""
    value = request.form.get(name, "").strip()
    if required and not value:
        raise BadRequestError(f"the field {name!r} is required")
    return checked_text(name, value, max_length)


def checked_text(name: str, value: str, max_length: int) -> str:
    """``value`` if it has at most ``max_length`` characters and no control character (400 otherwise)."""
    if len(value) > max_length:
        raise BadRequestError(f"the field {name!r} has more than {max_length} characters")
    if CONTROL_CHARACTERS.search(value):
        raise BadRequestError(f"the field {name!r} holds a control character or an invalid code point")
    return value


def query_text(name: str, max_length: int = 100) -> str | None:
    """A stripped search parameter of the query string, cut to ``max_length``, or None when empty."""
    value = request.args.get(name, "").strip()[:max_length]
    return checked_text(name, value, max_length) or None


def form_customer_id() -> str:
    """The form's ``customer_id`` (400 when missing, 422 ``invalid_customer_id`` when not valid)."""
    value = request.form.get("customer_id", "").strip()
    if not value:
        raise BadRequestError("the field 'customer_id' is required")
    return validate_customer_id(value)


def form_display_name() -> str | None:
    """The form's optional ``display_name`` (see :func:`_checked_display_name`), None when empty."""
    return _checked_display_name(request.form.get("display_name", "").strip()) or None


def _checked_display_name(value: str) -> str:
    """A display name: at most 200 characters, no control or bidirectional override character (400)."""
    checked_text("display_name", value, DISPLAY_NAME_MAX_LENGTH)
    if BIDI_CONTROLS.search(value):
        raise BadRequestError("the field 'display_name' holds a bidirectional override character")
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
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        raise BadRequestError("the JSON body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequestError("the body must be a JSON object")
    return data


def json_text(body: dict[str, Any], name: str, required: bool = True, max_length: int = 200) -> str | None:
    """A string member of a JSON object (400 when required and missing, not a string, too long or unsafe)."""
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise BadRequestError(f"{name!r} must be a string of at most {max_length} characters")
    return checked_text(name, value, max_length)


def json_customer_id(body: dict[str, Any]) -> str:
    """The ``customer_id`` member (400 when missing or not a string, 422 when not a valid ID)."""
    value = body.get("customer_id")
    if not isinstance(value, str):
        raise BadRequestError("'customer_id' must be a string")
    return validate_customer_id(value)


def json_display_name(body: dict[str, Any]) -> str | None:
    """The optional ``display_name`` member (400 when not a string or not a valid name), None when empty."""
    value = json_text(body, "display_name", required=False, max_length=DISPLAY_NAME_MAX_LENGTH)
    return _checked_display_name(value) if value else None
