"""Template helpers: permission checks for menus, dates, scores, inline PNG pictures."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from flask import Flask
from flask_login import current_user

from webapp.access import PERMISSIONS, current_principal


def can(permission: str) -> bool:
    """True when the logged-in user (or API principal) has ``permission``."""
    principal = current_principal()
    if principal is not None:
        return principal.may(permission)
    return bool(current_user.is_authenticated and current_user.role in PERMISSIONS[permission])


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, for pictures that are never stored (queries, overlays)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def when(value: datetime | str | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM UTC``."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def score(value: float | None) -> str:
    """A score with three decimals."""
    return "" if value is None else f"{value:.3f}"


def register_template_helpers(app: Flask) -> None:
    """Make the helpers available in every template."""
    app.jinja_env.globals["can"] = can
    app.jinja_env.filters.update(data_uri=data_uri, when=when, score=score)
