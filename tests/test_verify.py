"""Verification by ID, identification, comparison, thresholds, audit and reindex."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from enroll.service import enroll_signatures
from siamese.errors import UndecodableImageError
from siamese.scoring import aggregate_scores
from store.customers import delete_customer
from store.database import Store, embedding_from_bytes
from store.errors import (
    CustomerNotFoundError,
    CustomerSuspendedError,
    InvalidCustomerIdError,
    ModelVersionMismatchError,
    NoReferencesError,
)
from store.schema import Customer, Reference, Verification
from tests.conftest import signature_png
from verify.reindex import reindex_references
from verify.service import compare_signatures, identify_signature, verify_signature


def audit_count(store: Store) -> int:
    with store.sessions() as session:
        return int(session.scalar(select(func.count(Verification.id))) or 0)


def test_verify_scores_aggregates_and_audits(store: Store, model):
    enrolled = enroll_signatures(store, model, "alice", [signature_png(1, s) for s in range(3)])
    query = signature_png(1, 5)
    result = verify_signature(store, model, "alice", query, actor="tester", channel="test")
    references = model.embed([signature_png(1, s) for s in range(3)])
    expected = model.score(references, model.embed([query]))
    assert [r["reference_id"] for r in result.reference_scores] == enrolled.reference_ids
    assert np.allclose([r["score"] for r in result.reference_scores], expected, atol=1e-4)
    assert result.score == pytest.approx(aggregate_scores(expected), abs=1e-4)
    assert result.best_reference_id == enrolled.reference_ids[int(np.argmax(expected))]
    assert result.threshold == model.threshold and result.model_version == model.version
    assert result.match == (result.score >= result.threshold)
    with store.sessions() as session:
        audit = session.get(Verification, result.verification_id)
        assert audit is not None
        assert (audit.customer_external_id, audit.actor, audit.channel) == ("alice", "tester", "test")
        assert audit.decision == result.match and audit.score == pytest.approx(result.score)
        assert audit.query_sha256 is not None and len(audit.reference_scores) == 3


def test_threshold_precedence_customer_then_settings_then_model(store: Store, model):
    enroll_signatures(store, model, "bob", [signature_png(2, 0), signature_png(2, 1)])
    assert verify_signature(store, model, "bob", signature_png(2, 3)).threshold == model.threshold
    store.settings = replace(store.settings, threshold=1.0)
    result = verify_signature(store, model, "bob", signature_png(2, 3))
    assert result.threshold == 1.0 and not result.match
    with store.transaction() as session:
        session.scalars(select(Customer)).one().threshold = 0.0
    result = verify_signature(store, model, "bob", signature_png(2, 3))
    assert result.threshold == 0.0 and result.match


def test_genuine_matches_and_other_writer_does_not(fake_store: Store, fake_model):
    enroll_signatures(fake_store, fake_model, "w1", [signature_png(1, s) for s in range(4)])
    assert verify_signature(fake_store, fake_model, "w1", signature_png(1, 9)).match
    assert not verify_signature(fake_store, fake_model, "w1", signature_png(8, 0)).match


def test_unknown_customer_no_references_and_bad_image_are_distinct_errors(store: Store, model):
    with pytest.raises(CustomerNotFoundError):
        verify_signature(store, model, "nobody", signature_png(1, 0))
    with pytest.raises(InvalidCustomerIdError):
        verify_signature(store, model, "no body", signature_png(1, 0))
    with store.transaction() as session:
        session.add(Customer(external_id="empty"))
    with pytest.raises(NoReferencesError):
        verify_signature(store, model, "empty", signature_png(1, 0))
    enroll_signatures(store, model, "carol", [signature_png(3, 0)])
    with pytest.raises(UndecodableImageError):
        verify_signature(store, model, "carol", b"not an image")
    assert audit_count(store) == 0


def test_deleted_and_suspended_customers_are_not_verified(store: Store, model):
    enroll_signatures(store, model, "dave", [signature_png(4, 0)])
    enroll_signatures(store, model, "erin", [signature_png(5, 0)])
    delete_customer(store, "dave")
    with pytest.raises(CustomerNotFoundError):
        verify_signature(store, model, "dave", signature_png(4, 1))
    with store.transaction() as session:
        session.scalars(select(Customer).where(Customer.external_id == "erin")).one().status = "suspended"
    with pytest.raises(CustomerSuspendedError):
        verify_signature(store, model, "erin", signature_png(5, 1))


def test_embeddings_of_another_model_version_are_never_compared(store: Store, model):
    enroll_signatures(store, model, "frank", [signature_png(6, 0), signature_png(6, 1)])
    with store.transaction() as session:
        for row in session.scalars(select(Reference)):
            row.model_version = "old-model"
    with pytest.raises(ModelVersionMismatchError, match="reindex"):
        verify_signature(store, model, "frank", signature_png(6, 2))


def test_reindex_re_embeds_stored_images_and_rebuilds_the_index(store: Store, model):
    enroll_signatures(store, model, "grace", [signature_png(7, s) for s in range(3)])
    with store.sessions() as session:
        original = {r.id: embedding_from_bytes(r.embedding) for r in session.scalars(select(Reference))}
    with store.transaction() as session:
        for row in session.scalars(select(Reference)):
            row.model_version = "old-model"
            row.embedding = np.zeros(256, dtype=np.float32).tobytes()
    count, report = reindex_references(store, model, progress=False)
    assert count == 3 and report.action == "rebuilt" and report.count == 3
    with store.sessions() as session:
        for row in session.scalars(select(Reference)):
            assert row.model_version == model.version
            assert np.allclose(embedding_from_bytes(row.embedding), original[row.id], atol=1e-5)
    assert store.index is not None and sorted(store.index.ids()) == sorted(original)
    assert reindex_references(store, model, progress=False)[0] == 0
    verify_signature(store, model, "grace", signature_png(7, 4))


def test_reindex_refits_references_stored_at_another_canvas_size(store: Store, model, monkeypatch):
    import siamese.preprocess

    uploads = [signature_png(8, s) for s in range(3)]
    enroll_signatures(store, model, "gita", uploads)
    with monkeypatch.context() as patch:  # the canvases sigverify stored before 2026-12-04 (150x220)
        patch.setattr(siamese.preprocess, "CANVAS_HEIGHT", 150)
        patch.setattr(siamese.preprocess, "CANVAS_WIDTH", 220)
        tall = [siamese.preprocess.preprocess(upload)[:, :, 0] for upload in uploads]
    with store.transaction() as session:
        rows = list(session.scalars(select(Reference).order_by(Reference.id)))
        original = {row.id: embedding_from_bytes(row.embedding) for row in rows}
        for row, canvas in zip(rows, tall):
            buffer = io.BytesIO()
            Image.fromarray(np.round(canvas * 255).astype(np.uint8)).save(buffer, format="PNG")
            row.image_png, row.model_version = buffer.getvalue(), "old-model"
    assert reindex_references(store, model, progress=False)[0] == 3
    with store.sessions() as session:
        for row in session.scalars(select(Reference)):
            with Image.open(io.BytesIO(row.image_png)) as image:
                assert image.size == (220, 150)  # the stored canvas is kept; it is refitted to embed
            assert float(embedding_from_bytes(row.embedding) @ original[row.id]) > 0.95
    assert verify_signature(store, model, "gita", signature_png(8, 4)).match


def test_identify_ranks_the_right_customer_first(fake_store: Store, fake_model):
    for writer in range(1, 7):
        enroll_signatures(fake_store, fake_model, f"w{writer}",
                          [signature_png(writer, s) for s in range(3)], force=True)
    candidates = identify_signature(fake_store, fake_model, signature_png(4, 8), k=3)
    assert len(candidates) == 3
    assert candidates[0].customer_id == "w4" and candidates[0].match
    assert candidates[0].score >= candidates[1].score >= candidates[2].score
    assert len(candidates[0].reference_scores) == 3


def test_identify_on_an_empty_store_returns_nothing(store: Store, model):
    assert identify_signature(store, model, signature_png(1, 0), k=5) == []


def test_compare_two_images(fake_model):
    same = compare_signatures(fake_model, signature_png(1, 0), signature_png(1, 1), 0.5)
    different = compare_signatures(fake_model, signature_png(1, 0), signature_png(9, 0), 0.5)
    assert same.match and not different.match and same.score > different.score


@pytest.mark.parametrize("old_customers", [("hana",), ("hana", "ivan")])
def test_health_asks_for_a_reindex_while_references_of_another_model_remain(
    store: Store, model, old_customers, caplog: pytest.LogCaptureFixture
):
    """After a model change, customers of the old embeddings cannot be verified: health says so (some
    or all references old), start-up logs it, and ``reindex`` clears it."""
    from store.consistency import index_health, sync_index
    from webapp.services import warn_of_other_model_references

    for number, customer in enumerate(("hana", "ivan")):
        enroll_signatures(store, model, customer, [signature_png(8 + number, s) for s in range(2)])
    with store.transaction() as session:
        for row in session.scalars(select(Reference)):
            if row.customer.external_id in old_customers:
                row.model_version = "old-model"
    sync_index(store, model.version)
    health = index_health(store, model.version)
    assert (health["consistent"], health["stale_reason"], health["other_model_references"]) == (
        False, "references_need_reindex", 2 * len(old_customers))
    warn_of_other_model_references(store, model.version)
    assert f"{2 * len(old_customers)} references were embedded by another model" in caplog.text
    reindex_references(store, model, progress=False)
    health = index_health(store, model.version)
    assert (health["consistent"], health["stale_reason"], health["other_model_references"]) == (True, None, 0)
