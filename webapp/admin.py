"""Admin pages: dashboard, customers (search, detail, threshold, deletion), audit log and CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from enroll.review import review_references
from store.audit import (
    CSV_COLUMNS,
    AuditFilter,
    count_verifications,
    iter_verifications,
    list_verifications,
    verification_stats,
)
from store.customers import count_customers, delete_customer, describe_customer, list_customers
from store.customers import set_customer_threshold as store_threshold
from store.references import delete_reference
from store.schema import utcnow
from verify.images import display_reference_png
from webapp.access import AUDIT, MANAGE, VIEW, requires
from webapp.errors import BadRequestError
from webapp.health import health_report
from webapp.inputs import date_value, float_value, form_flag, form_text, int_value, query_text
from webapp.services import services

bp = Blueprint("admin", __name__)

PAGE_SIZE = 25
STATS_DAYS = 30
HISTORY_ROWS = 20
AUDIT_PARAMETERS = ("customer", "decision", "from", "to")


@dataclass(frozen=True)
class Page:
    """One page of a listing: its number, the number of pages and the total row count."""

    number: int
    size: int
    total: int

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.number - 1) * self.size

    @property
    def count(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, -(-self.total // self.size))


def requested_page(total: int, size: int = PAGE_SIZE) -> Page:
    """The page named by the ``page`` query parameter (clamped to the last page)."""
    number = int_value(request.args, "page", 1, 1, 1_000_000)
    return Page(min(number, Page(1, size, total).count), size, total)


@bp.route("/")
@requires(VIEW)
def dashboard() -> Any:
    """Counts, recent verifications, accept and reject rates and a score histogram."""
    store = services().store
    stats = verification_stats(store, since=utcnow() - timedelta(days=STATS_DAYS))
    return render_template(
        "dashboard.html", health=health_report(), customers=count_customers(store), stats=stats,
        days=STATS_DAYS, recent=list_verifications(store, limit=10), threshold=services().threshold,
    )


@bp.route("/customers")
@requires(VIEW)
def customers() -> Any:
    """Customers, searchable by ID or name, a page at a time."""
    search = query_text("q") or ""
    store = services().store
    page = requested_page(count_customers(store, search))
    rows = list_customers(store, limit=page.size, offset=page.offset, search=search)
    return render_template("customers.html", customers=rows, page=page, search=search)


@bp.route("/customers/<customer_id>")
@requires(VIEW)
def customer(customer_id: str) -> Any:
    """One customer: references, warnings, threshold, verification history."""
    current = services()
    detail = describe_customer(current.store, customer_id)
    with current.index_access() as store:
        warnings = review_references(store, current.model, customer_id)
    history = list_verifications(current.store, AuditFilter(customer_id=customer_id), limit=HISTORY_ROWS)
    return render_template("customer.html", customer=detail, warnings=warnings, history=history,
                           global_threshold=current.threshold, model_version=current.model.version)


@bp.route("/customers/<customer_id>/references/<int:reference_id>.png")
@requires(VIEW)
def reference_image(customer_id: str, reference_id: int) -> Any:
    """A reference's normalised image, dark ink on white (not cached: biometric data)."""
    return Response(display_reference_png(services().store, customer_id, reference_id), mimetype="image/png")


@bp.route("/customers/<customer_id>/threshold", methods=["POST"])
@requires(MANAGE)
def customer_threshold(customer_id: str) -> Any:
    """Set the customer's own threshold, or clear it (back to the global one)."""
    value = None if form_flag("clear") else float_value(request.form, "threshold", 0.0, 1.0)
    if value is None and not form_flag("clear"):
        raise BadRequestError("give a threshold between 0 and 1, or clear it")
    store_threshold(services().store, customer_id, value)
    flash(f"Threshold of {customer_id} {'cleared' if value is None else f'set to {value:.3f}'}.", "success")
    return redirect(url_for("admin.customer", customer_id=customer_id))


@bp.route("/customers/<customer_id>/delete", methods=["GET", "POST"])
@requires(MANAGE)
def customer_delete(customer_id: str) -> Any:
    """Confirm, then delete the customer with their references (audit rows stay)."""
    current = services()
    detail = describe_customer(current.store, customer_id)
    if request.method == "GET":
        return render_template("customer_delete.html", customer=detail)
    if form_text("confirm_id") != customer_id:
        flash("Type the customer ID exactly to confirm the deletion.", "error")
        return render_template("customer_delete.html", customer=detail), 400
    with current.index_access() as store:
        removed = delete_customer(store, customer_id)
    flash(f"Deleted customer {customer_id} and {removed} references.", "success")
    return redirect(url_for("admin.customers"))


@bp.route("/customers/<customer_id>/references/<int:reference_id>/delete", methods=["POST"])
@requires(MANAGE)
def reference_delete(customer_id: str, reference_id: int) -> Any:
    """Delete one reference of the customer."""
    with services().index_access() as store:
        delete_reference(store, customer_id, reference_id)
    flash(f"Deleted reference {reference_id} of {customer_id}.", "success")
    return redirect(url_for("admin.customer", customer_id=customer_id))


def audit_filter() -> AuditFilter:
    """The audit filter of the query string: customer, decision (accept/reject), from and to dates."""
    decision = {"accept": True, "reject": False}.get(request.args.get("decision", ""))
    return AuditFilter(customer_id=query_text("customer", 64), decision=decision,
                       since=date_value(request.args, "from"), until=date_value(request.args, "to", True))


@bp.route("/audit")
@requires(AUDIT)
def audit() -> Any:
    """The verification audit, filtered, a page at a time."""
    store = services().store
    filters = audit_filter()
    page = requested_page(count_verifications(store, filters))
    rows = list_verifications(store, filters, limit=page.size, offset=page.offset)
    query = {key: request.args[key] for key in AUDIT_PARAMETERS if request.args.get(key)}
    return render_template("audit.html", rows=rows, page=page, args=request.args, filters=query)


@bp.route("/audit.csv")
@requires(AUDIT)
def audit_csv() -> Any:
    """The filtered audit as CSV (every matching row, streamed)."""
    rows = iter_verifications(services().store, audit_filter())
    response = Response(_csv_lines(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=sigverify-audit.csv"
    return response


def _csv_lines(rows: Iterator[Any]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(row.csv_row())
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
