"""The JSON API under ``/api/v1`` (API key in ``X-API-Key``; the OpenAPI document is public).

Errors are ``{"error": code, "message": text}`` with the error's HTTP status (see webapp.errors).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, jsonify, request

from enroll.service import enroll_signatures
from store.customers import (
    count_customers,
    create_customer,
    delete_customer,
    describe_customer,
    list_customers,
)
from store.references import delete_reference
from verify.service import compare_signatures, identify_signature, verify_signature
from webapp.access import MANAGE, OPERATE, PUBLIC, VIEW, actor, force_requested, requires
from webapp.health import health_report
from webapp.inputs import (
    form_customer_id,
    form_display_name,
    int_value,
    json_body,
    json_customer_id,
    json_display_name,
    query_text,
    uploaded_file,
    uploaded_files,
)
from webapp.openapi import openapi_document
from webapp.services import services

bp = Blueprint("api", __name__)

MAX_PAGE = 500


@bp.route("/openapi.json")
@requires(PUBLIC)
def openapi() -> Any:
    """The OpenAPI 3 document of this API."""
    return jsonify(openapi_document())


@bp.route("/health")
@requires(VIEW)
def health() -> Any:
    """Model version, index size, SQL reference count and whether they agree."""
    return jsonify(health_report())


@bp.route("/customers")
@requires(VIEW)
def customers_list() -> Any:
    """Customers by ID: ``search``, ``limit`` (1-500, default 100), ``offset``."""
    search = query_text("search")
    limit = int_value(request.args, "limit", 100, 1, MAX_PAGE)
    offset = int_value(request.args, "offset", 0, 0, 2**31)
    store = services().store
    rows = list_customers(store, limit=limit, offset=offset, search=search)
    return jsonify({"customers": [asdict(row) for row in rows], "total": count_customers(store, search),
                    "limit": limit, "offset": offset})


@bp.route("/customers", methods=["POST"])
@requires(OPERATE)
def customers_create() -> Any:
    """Create a customer without references: ``{"customer_id": ..., "display_name": ...}``."""
    body = json_body()
    created = create_customer(services().store, json_customer_id(body), json_display_name(body))
    return jsonify(asdict(created)), 201


@bp.route("/customers/<customer_id>")
@requires(VIEW)
def customers_get(customer_id: str) -> Any:
    """One customer with their references and verification count."""
    return jsonify(asdict(describe_customer(services().store, customer_id)))


@bp.route("/customers/<customer_id>", methods=["DELETE"])
@requires(MANAGE)
def customers_delete(customer_id: str) -> Any:
    """Delete a customer, their references and index entries (audit rows stay)."""
    with services().index_access() as store:
        removed = delete_customer(store, customer_id)
    return jsonify({"customer_id": customer_id, "deleted_references": removed})


@bp.route("/customers/<customer_id>/references")
@requires(VIEW)
def references_list(customer_id: str) -> Any:
    """The customer's references (id, sha256, model version, creation time)."""
    detail = describe_customer(services().store, customer_id)
    return jsonify({"customer_id": customer_id, "references": [asdict(r) for r in detail.references]})


@bp.route("/customers/<customer_id>/references", methods=["POST"])
@requires(OPERATE)
def references_add(customer_id: str) -> Any:
    """Enroll the ``images`` files (all or none); creates the customer when new."""
    images = uploaded_files("images")
    display_name = form_display_name()
    current = services()
    with current.index_access() as store:
        result = enroll_signatures(store, current.model, customer_id, images, display_name=display_name,
                                   force=force_requested())
    return jsonify(result.to_dict()), 201


@bp.route("/customers/<customer_id>/references/<int:reference_id>", methods=["DELETE"])
@requires(MANAGE)
def references_delete(customer_id: str, reference_id: int) -> Any:
    """Delete one reference."""
    with services().index_access() as store:
        delete_reference(store, customer_id, reference_id)
    return jsonify({"customer_id": customer_id, "deleted_reference": reference_id})


@bp.route("/verify", methods=["POST"])
@requires(OPERATE)
def verify() -> Any:
    """Verify ``image`` against the references of ``customer_id``."""
    image = uploaded_file("image")
    current = services()
    result = verify_signature(current.store, current.model, form_customer_id(), image,
                              actor=actor(), channel="api")
    return jsonify(result.to_dict())


@bp.route("/compare", methods=["POST"])
@requires(OPERATE)
def compare() -> Any:
    """Score ``image_a`` against ``image_b``; nothing is stored."""
    first, second = uploaded_file("image_a"), uploaded_file("image_b")
    current = services()
    result = compare_signatures(current.model, first, second, current.threshold,
                                current.settings.max_upload_bytes, current.settings.max_image_pixels)
    return jsonify(asdict(result))


@bp.route("/identify", methods=["POST"])
@requires(OPERATE)
def identify() -> Any:
    """The ``top`` (1-50, default 5) customers whose references best match ``image``."""
    image = uploaded_file("image")
    top = int_value(request.form, "top", 5, 1, 50)
    current = services()
    with current.index_access() as store:
        candidates = identify_signature(store, current.model, image, top)
    return jsonify({"candidates": [asdict(candidate) for candidate in candidates],
                    "model_version": current.model.version})
