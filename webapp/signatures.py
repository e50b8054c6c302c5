"""Operator pages: enroll references, verify by customer ID, compare two images, identify (1:N)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from enroll.service import enroll_signatures
from store.customers import describe_customer
from verify.images import comparison_images, display_upload_png, verification_images
from verify.service import compare_signatures, identify_signature, verify_signature
from webapp.access import OPERATE, actor, force_requested, requires
from webapp.inputs import form_customer_id, form_display_name, int_value, uploaded_file, uploaded_files
from webapp.services import services

bp = Blueprint("signatures", __name__)


@bp.route("/enroll", methods=["GET", "POST"])
@requires(OPERATE)
def enroll() -> Any:
    """Enroll one or more reference images for a customer (created when new)."""
    if request.method == "GET":
        return render_template("enroll.html", customer_id=request.args.get("customer_id", "")[:64])
    customer_id = form_customer_id()
    display_name = form_display_name()
    images = uploaded_files("images")
    current = services()
    with current.index_access() as store:
        result = enroll_signatures(store, current.model, customer_id, images, display_name=display_name,
                                   force=force_requested())
    detail = describe_customer(current.store, customer_id)
    return render_template("enroll_result.html", result=result, customer=detail)


@bp.route("/verify", methods=["GET", "POST"])
@requires(OPERATE)
def verify() -> Any:
    """Verify a signature against a customer's references; show the evidence beside the decision."""
    if request.method == "GET":
        return render_template("verify.html", customer_id=request.args.get("customer_id", "")[:64])
    customer_id = form_customer_id()
    image = uploaded_file("image")
    current = services()
    result = verify_signature(current.store, current.model, customer_id, image, actor=actor(), channel="web")
    pictures = verification_images(current.store, customer_id, result.best_reference_id, image)
    return render_template("verify_result.html", result=result, pictures=pictures)


@bp.route("/compare", methods=["GET", "POST"])
@requires(OPERATE)
def compare() -> Any:
    """Score two images against each other; nothing is stored."""
    if request.method == "GET":
        return render_template("compare.html")
    first, second = uploaded_file("image_a"), uploaded_file("image_b")
    current = services()
    settings = current.settings
    result = compare_signatures(current.model, first, second, current.threshold,
                                settings.max_upload_bytes, settings.max_image_pixels)
    pictures = comparison_images(first, second, settings.max_image_pixels)
    return render_template("compare_result.html", result=result, pictures=pictures)


@bp.route("/identify", methods=["GET", "POST"])
@requires(OPERATE)
def identify() -> Any:
    """The enrolled customers whose references best match an image."""
    if request.method == "GET":
        return render_template("identify.html")
    image = uploaded_file("image")
    top = int_value(request.form, "top", 5, 1, 50)
    current = services()
    with current.index_access() as store:
        candidates = identify_signature(store, current.model, image, top)
    query_png = display_upload_png(image, current.settings.max_image_pixels)
    return render_template("identify_result.html", candidates=candidates, query_png=query_png)
