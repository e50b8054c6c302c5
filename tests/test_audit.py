"""Store queries behind the admin pages: audit listing and statistics, customer search, creation,
details, single-reference deletion, the review of stored references, and the verification pictures."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from enroll.review import review_references
from enroll.service import enroll_signatures
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH
from store.audit import (
    CSV_COLUMNS,
    AuditFilter,
    count_verifications,
    iter_verifications,
    list_verifications,
    verification_stats,
)
from store.customers import count_customers, create_customer, describe_customer, list_customers
from store.database import Store
from store.errors import CustomerExistsError, CustomerNotFoundError, ReferenceNotFoundError
from store.references import delete_reference, reference_image
from store.schema import Verification, utcnow
from tests.conftest import signature_png
from verify.images import REFERENCE_COLOUR, display_reference_png, verification_images
from verify.service import verify_signature


@pytest.fixture
def audited(fake_store: Store, fake_model):  # type: ignore[no-untyped-def]
    """Two customers and five verifications (three of w3, two of w4), some matches, some not."""
    enroll_signatures(fake_store, fake_model, "w3", [signature_png(3, s) for s in range(3)])
    enroll_signatures(fake_store, fake_model, "w4", [signature_png(4, s) for s in range(3)])
    for customer, query in (("w3", signature_png(3, 5)), ("w3", signature_png(3, 5, True)),
                            ("w3", signature_png(8, 0)), ("w4", signature_png(4, 6)),
                            ("w4", signature_png(4, 7))):
        verify_signature(fake_store, fake_model, customer, query, actor="tester", channel="test")
    return fake_store


def test_audit_lists_newest_first_and_filters(audited: Store):
    rows = list_verifications(audited)
    assert [row.id for row in rows] == sorted((row.id for row in rows), reverse=True) and len(rows) == 5
    assert count_verifications(audited, AuditFilter(customer_id="w3")) == 3
    accepted = list_verifications(audited, AuditFilter(decision=True))
    assert accepted and all(row.decision for row in accepted)
    rejected = count_verifications(audited, AuditFilter(decision=False))
    assert rejected + len(accepted) == 5 and rejected >= 2
    now = utcnow()
    assert count_verifications(audited, AuditFilter(since=now - timedelta(hours=1))) == 5
    assert count_verifications(audited, AuditFilter(until=now - timedelta(hours=1))) == 0
    assert count_verifications(audited, AuditFilter(since=now + timedelta(hours=1))) == 0
    page = list_verifications(audited, limit=2, offset=2)
    assert [row.id for row in page] == [row.id for row in rows[2:4]]


def test_audit_export_streams_every_row_in_batches(audited: Store):
    entries = list(iter_verifications(audited, batch=2))
    assert [entry.id for entry in entries] == [row.id for row in list_verifications(audited)]
    cells = entries[0].csv_row()
    assert len(cells) == len(CSV_COLUMNS) and cells[3] in ("accept", "reject") and cells[9] == "tester"
    assert list(iter_verifications(audited, AuditFilter(customer_id="nobody"))) == []


def test_stats_count_decisions_and_bin_scores(audited: Store):
    stats = verification_stats(audited, bins=10)
    assert stats.total == 5 and sum(stats.histogram) == 5 and len(stats.histogram) == 10
    assert stats.accepted + stats.rejected == 5 and stats.accept_rate == stats.accepted / 5
    with audited.sessions() as session:
        scores = list(session.scalars(select(Verification.score)))
    expected = np.histogram(scores, bins=10, range=(0.0, 1.0))[0].tolist()
    assert stats.histogram == expected
    empty = verification_stats(audited, since=utcnow() + timedelta(days=1))
    assert (empty.total, empty.accept_rate, sum(empty.histogram)) == (0, None, 0)


def test_customers_search_count_and_page(fake_store: Store):
    for number in range(12):
        create_customer(fake_store, f"cust-{number:02d}", "Ann 50%_off" if number == 3 else f"Name {number}")
    assert count_customers(fake_store) == 12
    assert [c.customer_id for c in list_customers(fake_store, limit=5, offset=10)] == ["cust-10", "cust-11"]
    assert [c.customer_id for c in list_customers(fake_store, search="ANN")] == ["cust-03"]
    assert count_customers(fake_store, "50%_") == 1 and count_customers(fake_store, "%") == 1
    assert count_customers(fake_store, "cust-1") == 2


def test_create_customer_refuses_duplicates(fake_store: Store):
    created = create_customer(fake_store, "c1", "Carl")
    assert (created.customer_id, created.reference_count, created.display_name) == ("c1", 0, "Carl")
    with pytest.raises(CustomerExistsError):
        create_customer(fake_store, "c1")


def test_describe_delete_reference_and_image(fake_store: Store, fake_model):
    enrolled = enroll_signatures(fake_store, fake_model, "w3", [signature_png(3, s) for s in range(3)])
    detail = describe_customer(fake_store, "w3")
    assert [r.id for r in detail.references] == enrolled.reference_ids and detail.verifications == 0
    first, *rest = enrolled.reference_ids
    png = reference_image(fake_store, "w3", first)
    assert Image.open(io.BytesIO(png)).size == (CANVAS_WIDTH, CANVAS_HEIGHT)
    delete_reference(fake_store, "w3", first)
    assert [r.id for r in describe_customer(fake_store, "w3").references] == rest
    assert fake_store.index is not None and first not in fake_store.index.ids()
    with pytest.raises(ReferenceNotFoundError):
        reference_image(fake_store, "w3", first)
    with pytest.raises(ReferenceNotFoundError):
        delete_reference(fake_store, "w3", first)
    create_customer(fake_store, "other")
    with pytest.raises(ReferenceNotFoundError):  # a reference of another customer
        reference_image(fake_store, "other", rest[0])
    with pytest.raises(CustomerNotFoundError):
        describe_customer(fake_store, "nobody")


def test_review_flags_the_odd_reference(fake_store: Store, fake_model):
    images = [signature_png(3, s) for s in range(3)] + [signature_png(8, 0)]
    enrolled = enroll_signatures(fake_store, fake_model, "w3", images)
    warnings = review_references(fake_store, fake_model, "w3")
    assert [w.details["reference_id"] for w in warnings] == [enrolled.reference_ids[3]]
    assert warnings[0].code == "inconsistent_reference" and "reference" in warnings[0].message
    create_customer(fake_store, "empty")
    assert review_references(fake_store, fake_model, "empty") == []


def test_review_flags_a_reference_that_matches_another_customer(fake_store: Store, fake_model):
    fake_store.settings = fake_store.settings.with_overrides(enroll_cross_match_threshold=0.5)
    enroll_signatures(fake_store, fake_model, "w3", [signature_png(3, s) for s in range(3)])
    other = enroll_signatures(fake_store, fake_model, "twin", [signature_png(4, 0), signature_png(3, 6)],
                              force=True)
    warnings = review_references(fake_store, fake_model, "twin")
    matches = [w for w in warnings if w.code == "matches_other_customer"]
    assert [w.details["reference_id"] for w in matches] == [other.reference_ids[1]]
    assert matches[0].details["other_customer_id"] == "w3"


def test_verification_pictures_overlay_reference_and_query(fake_store: Store, fake_model):
    enrolled = enroll_signatures(fake_store, fake_model, "w3", [signature_png(3, s) for s in range(3)])
    pictures = verification_images(fake_store, "w3", enrolled.reference_ids[0], signature_png(3, 5))
    overlay = np.asarray(Image.open(io.BytesIO(pictures.overlay_png)).convert("RGB"))
    assert overlay.shape == (CANVAS_HEIGHT, CANVAS_WIDTH, 3)
    colours = {tuple(pixel) for pixel in overlay.reshape(-1, 3)}
    assert (255, 255, 255) in colours and REFERENCE_COLOUR in colours
    thumbnail = display_reference_png(fake_store, "w3", enrolled.reference_ids[0])
    shown = np.asarray(Image.open(io.BytesIO(thumbnail)))
    assert shown.mean() > 200  # dark ink on white paper
