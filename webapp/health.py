"""``/healthz``: model version and runtime, index size, SQL reference count and whether they agree
(no login)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from store.consistency import index_health
from webapp.access import PUBLIC, requires
from webapp.services import services

bp = Blueprint("health", __name__)


def health_report() -> dict[str, Any]:
    """The health of this process as JSON-ready data (``status`` ok, or stale when index and SQL differ
    or the index file could not be written)."""
    current = services()
    report = index_health(current.store, current.model.version)
    return {"status": "ok" if report["consistent"] else "stale", "model_runtime": current.model.runtime,
            **report}


@bp.route("/healthz")
@requires(PUBLIC)
def healthz() -> Any:
    """Health as JSON, always 200 while the process answers."""
    return jsonify(health_report())
