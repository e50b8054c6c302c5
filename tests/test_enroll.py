"""Enrollment: what is stored, all-or-none, bad inputs, duplicates, warnings and the blocking policy."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from enroll.policy import (
    CONSISTENCY_CEILING,
    CROSS_MATCH_FLOOR,
    INCONSISTENT_REFERENCE,
    MATCHES_OTHER_CUSTOMER,
    EnrollmentPolicy,
    parse_blocking,
)
from enroll.service import enroll_signatures
from siamese.errors import SigverifyError
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH
from store.database import Store, embedding_from_bytes
from store.errors import (
    DuplicateReferenceError,
    EnrollmentRejectedError,
    InvalidCustomerIdError,
    ModelVersionMismatchError,
)
from store.schema import Customer, Reference
from store.settings import Settings
from tests.conftest import signature_png, write_signature
from verify.reindex import canvas_from_png


def counts(store: Store) -> tuple[int, int]:
    with store.sessions() as session:
        return (int(session.scalar(select(func.count(Customer.id))) or 0),
                int(session.scalar(select(func.count(Reference.id))) or 0))


def png_header_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


BAD_IMAGES = {
    "empty": (b"", "undecodable_image"),
    "text": (b"name,signature\nalice,yes\n" * 20, "undecodable_image"),
    "truncated_png": (signature_png(1, 0)[:300], "undecodable_image"),
    "one_pixel": (encoded(Image.new("L", (1, 1), 0)), "image_too_small"),
    "blank_page": (encoded(Image.new("L", (600, 300), 255)), "no_ink"),
    "bomb_30000": (png_header_bomb(), "image_too_large"),
    "pdf": (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n", "undecodable_image"),
}


def test_enrollment_stores_normalised_images_hashes_and_embeddings(store: Store, model):
    images = [signature_png(1, sample) for sample in range(3)]
    result = enroll_signatures(store, model, "alice", images, display_name="Alice")
    assert result.created and len(result.reference_ids) == 3
    with store.sessions() as session:
        rows = list(session.scalars(select(Reference).order_by(Reference.id)))
        customer = session.scalars(select(Customer)).one()
    assert customer.external_id == "alice" and customer.display_name == "Alice"
    assert [row.sha256 for row in rows] == [hashlib.sha256(image).hexdigest() for image in images]
    canvas = canvas_from_png(rows[0].image_png)
    assert canvas.shape == (CANVAS_HEIGHT, CANVAS_WIDTH, 1) and canvas.max() == 1.0
    again = model.embed_preprocessed(canvas[None])[0]
    assert np.allclose(embedding_from_bytes(rows[0].embedding), again, atol=1e-5)
    assert all(row.model_version == model.version for row in rows)
    assert store.index is not None and list(store.index.ids()) == result.reference_ids


def test_more_references_can_be_added_to_an_existing_customer(store: Store, model, tmp_path):
    enroll_signatures(store, model, "bob", [signature_png(2, 0)])
    result = enroll_signatures(store, model, "bob", [write_signature(tmp_path, 2, 1)])
    assert not result.created
    assert counts(store) == (1, 2)


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_bad_image_gives_a_clear_error_and_stores_nothing(store: Store, model, name: str):
    data, code = BAD_IMAGES[name]
    images = [signature_png(3, 0), signature_png(3, 1), data]
    with pytest.raises(SigverifyError) as caught:
        enroll_signatures(store, model, "carol", images)
    assert caught.value.code == code
    assert "image 3" in caught.value.message
    assert counts(store) == (0, 0)
    assert store.index is not None and len(store.index) == 0


def test_a_file_over_the_upload_limit_is_refused(store: Store, model):
    small = replace(store.settings, max_upload_bytes=100)
    limited = Store(small, engine=store.engine)
    limited.index = store.index
    with pytest.raises(SigverifyError) as caught:
        enroll_signatures(limited, model, "dave", [signature_png(1, 0)])
    assert caught.value.code == "image_too_large"


def test_missing_file_is_undecodable(store: Store, model, tmp_path):
    with pytest.raises(SigverifyError) as caught:
        enroll_signatures(store, model, "erin", [tmp_path / "nope.png"])
    assert caught.value.code == "undecodable_image"


@pytest.mark.parametrize("customer_id", ["", "x" * 65, "bad\x07bell", "a/b", "..\\x", "1' OR '1'='1"])
def test_invalid_customer_id_stores_nothing(store: Store, model, customer_id: str):
    with pytest.raises(InvalidCustomerIdError):
        enroll_signatures(store, model, customer_id, [signature_png(1, 0)])
    assert counts(store) == (0, 0)


def test_duplicate_uploads_are_rejected(store: Store, model):
    first = signature_png(4, 0)
    with pytest.raises(DuplicateReferenceError, match="same file as image 1"):
        enroll_signatures(store, model, "frank", [first, signature_png(4, 1), first])
    assert counts(store) == (0, 0)
    enroll_signatures(store, model, "frank", [first])
    with pytest.raises(DuplicateReferenceError, match="already enrolled"):
        enroll_signatures(store, model, "frank", [signature_png(4, 2), first])
    with pytest.raises(DuplicateReferenceError, match="'frank'"):
        enroll_signatures(store, model, "grace", [first])
    assert counts(store) == (1, 1)


def test_image_count_limits(store: Store, model):
    with pytest.raises(EnrollmentRejectedError):
        enroll_signatures(store, model, "henry", [])
    limit = store.settings.enroll_max_images
    too_many = [signature_png(5, sample) for sample in range(limit + 1)]
    with pytest.raises(EnrollmentRejectedError, match=f"1 to {limit}"):
        enroll_signatures(store, model, "henry", too_many)
    assert counts(store) == (0, 0)


def test_references_of_another_model_version_must_be_reindexed_first(store: Store, model):
    enroll_signatures(store, model, "ivan", [signature_png(6, 0)])
    with store.transaction() as session:
        for row in session.scalars(select(Reference)):
            row.model_version = "old-model"
    with pytest.raises(ModelVersionMismatchError, match="reindex"):
        enroll_signatures(store, model, "ivan", [signature_png(6, 1)])


def test_consistent_references_give_no_warning(fake_store: Store, fake_model):
    result = enroll_signatures(fake_store, fake_model, "w1", [signature_png(1, s) for s in range(4)])
    assert result.warnings == []


def test_a_wrong_image_is_reported_as_inconsistent(fake_store: Store, fake_model):
    images = [signature_png(1, 0), signature_png(1, 1), signature_png(1, 2), signature_png(7, 0)]
    result = enroll_signatures(fake_store, fake_model, "w1", images)
    flagged = [w.image for w in result.warnings if w.code == INCONSISTENT_REFERENCE]
    assert flagged == [3]
    assert counts(fake_store) == (1, 4), "inconsistency does not block by default"


def test_inconsistency_blocks_when_configured(fake_store: Store, fake_model):
    fake_store.settings = replace(fake_store.settings, enroll_blocking_warnings=INCONSISTENT_REFERENCE)
    images = [signature_png(1, 0), signature_png(1, 1), signature_png(7, 0)]
    with pytest.raises(EnrollmentRejectedError) as caught:
        enroll_signatures(fake_store, fake_model, "w1", images)
    assert [w["code"] for w in caught.value.warnings] == [INCONSISTENT_REFERENCE]
    assert counts(fake_store) == (0, 0)


def test_matching_another_customer_blocks_by_default_and_force_overrides(fake_store: Store, fake_model):
    enroll_signatures(fake_store, fake_model, "original", [signature_png(2, s) for s in range(3)])
    enroll_signatures(fake_store, fake_model, "someone-else", [signature_png(3, s) for s in range(3)])
    attempt = [signature_png(2, s) for s in range(3, 6)]
    with pytest.raises(EnrollmentRejectedError, match="original") as caught:
        enroll_signatures(fake_store, fake_model, "impostor", attempt)
    assert {w["other_customer_id"] for w in caught.value.warnings} == {"original"}
    assert counts(fake_store) == (2, 6)
    forced = enroll_signatures(fake_store, fake_model, "impostor", attempt, force=True)
    assert {w.code for w in forced.warnings} == {MATCHES_OTHER_CUSTOMER}
    assert counts(fake_store) == (3, 9)


def test_blocking_setting_parsing():
    assert parse_blocking("") == frozenset()
    assert parse_blocking("all") == {INCONSISTENT_REFERENCE, MATCHES_OTHER_CUSTOMER}
    assert parse_blocking(" inconsistent_reference ,") == {INCONSISTENT_REFERENCE}
    with pytest.raises(ValueError):
        parse_blocking("made_up")


def test_a_concurrent_enrollment_of_the_same_customer_is_a_clear_retryable_error(
    fake_store: Store, fake_model, monkeypatch: pytest.MonkeyPatch
):
    import enroll.service

    enroll_signatures(fake_store, fake_model, "race", [signature_png(1, 0)])
    monkeypatch.setattr(enroll.service, "find_customer", lambda session, customer_id: None)
    with pytest.raises(SigverifyError) as caught:
        enroll_signatures(fake_store, fake_model, "race", [signature_png(1, 1)], force=True)
    assert caught.value.code == "concurrent_update" and caught.value.http_status == 409
    assert counts(fake_store) == (1, 1)


def test_import_takes_the_first_signatures_in_natural_order():
    from pathlib import Path

    from enroll.bulk import customer_id_for, natural_key

    names = ["w/original_1_10.png", "w/original_1_2.png", "w/original_1_1.png"]
    assert [p.name for p in sorted(map(Path, names), key=natural_key)] == [
        "original_1_1.png", "original_1_2.png", "original_1_10.png"]
    assert customer_id_for("", "cedar-12") == "cedar-12"
    assert customer_id_for("bank/", "bhsig hindi 7") == "bank_bhsig_hindi_7"


def test_alarm_levels_default_to_the_decision_threshold_within_bounds():
    settings = Settings()
    assert EnrollmentPolicy.from_settings(settings, 0.68).cross_match_threshold == CROSS_MATCH_FLOOR
    assert EnrollmentPolicy.from_settings(settings, 0.97).cross_match_threshold == 0.97
    explicit = settings.with_overrides(enroll_cross_match_threshold=0.7)
    assert EnrollmentPolicy.from_settings(explicit, 0.68).cross_match_threshold == 0.7
    assert EnrollmentPolicy.from_settings(settings, 0.68).consistency_threshold == CONSISTENCY_CEILING
    assert EnrollmentPolicy.from_settings(settings, 0.2).consistency_threshold == 0.2
