"""Errors of the web layer, and the one handler that shows any error as JSON or as a page message.

API requests (``/api/...``) get ``{"error": code, "message": text}`` with the error's status; pages
get the error page with the message flashed. No traceback is ever sent: unexpected exceptions are
logged and answered with a generic 500. A lost database connection is a 503 ``database_unavailable``
(with ``Retry-After``); any other SQL error is a bug and stays a 500.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, flash, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

from siamese.errors import SigverifyError
from store.database import database_unavailable

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "request_too_large", 415: "unsupported_media_type",
    429: "too_many_requests", 500: "internal_error", 503: "service_unavailable",
}
RETRY_AFTER_SECONDS = 5


class BadRequestError(SigverifyError):
    """A required field is missing or a parameter is malformed."""

    code = "bad_request"
    http_status = 400


class UnsupportedMediaTypeError(SigverifyError):
    """The request body is not of the content type this endpoint reads."""

    code = "unsupported_media_type"
    http_status = 415


class MissingApiKeyError(SigverifyError):
    """An API request came without an ``X-API-Key`` header."""

    code = "missing_api_key"
    http_status = 401


class PermissionDeniedError(SigverifyError):
    """The user's role does not allow this action."""

    code = "forbidden"
    http_status = 403


class LoginThrottledError(SigverifyError):
    """Too many failed logins for this user name or address; wait before trying again."""

    code = "too_many_attempts"
    http_status = 429


def wants_json() -> bool:
    """True for API requests and the health check, which are answered in JSON."""
    return request.path.startswith("/api/") or request.path == "/healthz"


def handle_error(error: Exception) -> Any:
    """Turn a domain or HTTP error into a JSON body (API) or the error page with a message."""
    status, code, message, extra = describe(error)
    if wants_json():
        response = jsonify({"error": code, "message": message, **extra})
    else:
        flash(message, "error")
        response = make_response(render_template("error.html", status=status, code=code, extra=extra))
    response.status_code = status
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def describe(error: Exception) -> tuple[int, str, str, dict[str, Any]]:
    """Status, code, message and extra fields (e.g. enrollment warnings) of an error."""
    if isinstance(error, SigverifyError):
        warnings = getattr(error, "warnings", None)
        return error.http_status, error.code, error.message, ({"warnings": warnings} if warnings else {})
    if isinstance(error, CSRFError):
        return 400, "csrf_failed", "The form was not sent from this site or has expired; reload, retry.", {}
    if isinstance(error, HTTPException) and not isinstance(error, InternalServerError):
        status = error.code or 500
        return status, HTTP_CODES.get(status, "http_error"), error.description or error.name, {}
    return 500, "internal_error", "Something went wrong on the server; it has been logged.", {}


def handle_database_error(error: DBAPIError) -> Any:
    """A lost or refused database connection: 503 ``database_unavailable``; any other SQL error re-raised."""
    unavailable = database_unavailable(error)
    if unavailable is None:
        raise error  # a bug or an unexpected conflict: Flask logs it and answers the generic 500
    current_app.logger.warning("database unavailable: %s", unavailable.detail)
    if not wants_json():  # the page layout asks for the user, whom the database cannot give now
        g._login_user = current_app.login_manager.anonymous_user()  # where Flask-Login keeps it
    response = handle_error(unavailable)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def register_error_handlers(app: Flask) -> None:
    """Route every SigverifyError, HTTP error (including 500) and lost database through one handler."""
    app.register_error_handler(SigverifyError, handle_error)
    app.register_error_handler(HTTPException, handle_error)
    app.register_error_handler(DBAPIError, handle_database_error)
