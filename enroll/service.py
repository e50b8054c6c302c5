"""Enrollment of a customer's reference signatures: validate, embed, check, store in one transaction.

See ``enroll.policy`` for what is an error, what is a warning and which warnings block.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from enroll.policy import (
    INCONSISTENT_REFERENCE,
    MATCHES_OTHER_CUSTOMER,
    EnrollmentPolicy,
    EnrollmentWarning,
)
from siamese.errors import ImageError
from siamese.preprocess import preprocess
from store.consistency import index_changed
from store.customers import find_customer, reference_vectors, validate_customer_id
from store.database import Store, embedding_to_bytes
from store.errors import (
    ConcurrentUpdateError,
    DuplicateReferenceError,
    EnrollmentRejectedError,
    ModelVersionMismatchError,
)
from store.schema import Customer, Reference
from verify.runtime import decision_threshold
from verify.service import ImageInput, read_image_bytes, score_against

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from siamese.model import SignatureModel

CROSS_MATCH_NEIGHBOURS = 20


@dataclass(frozen=True)
class EnrollmentResult:
    """What an enrollment stored and what it noticed."""

    customer_id: str
    created: bool
    reference_ids: list[int]
    warnings: list[EnrollmentWarning] = field(default_factory=list)
    model_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {"customer_id": self.customer_id, "created": self.created,
                "reference_ids": self.reference_ids, "model_version": self.model_version,
                "warnings": [warning.to_dict() for warning in self.warnings]}


@dataclass(frozen=True)
class PreparedImage:
    """One validated upload: its hash, normalised canvas (PNG) and embedding."""

    sha256: str
    image_png: bytes
    embedding: np.ndarray


def enroll_signatures(
    store: Store, model: SignatureModel, customer_id: str, images: list[ImageInput],
    display_name: str | None = None, force: bool = False, save: bool = True,
) -> EnrollmentResult:
    """Enroll ``images`` as references of ``customer_id`` (created if new), all or none.

    Args:
        force: store even when a blocking warning fired.
        save: write the index file after the commit when a save is due (False: the caller writes it).

    Raises:
        InvalidCustomerIdError, ImageError, DuplicateReferenceError, ModelVersionMismatchError,
        EnrollmentRejectedError.
    """
    validate_customer_id(customer_id)
    policy = EnrollmentPolicy.from_settings(store.settings, decision_threshold(store.settings, model))
    if not images or len(images) > policy.max_images:
        raise EnrollmentRejectedError(
            f"an enrollment takes 1 to {policy.max_images} images, got {len(images)}"
        )
    prepared = prepare_images(store, model, images)
    try:
        reference_ids, warnings, created = _store_references(
            store, model, policy, customer_id, display_name, prepared, force
        )
    except IntegrityError:
        raise ConcurrentUpdateError(
            f"customer {customer_id!r} or one of the images was enrolled by another request at the "
            "same time; nothing was stored, retry"
        ) from None
    _index_new_references(store, model.version, reference_ids, prepared, save)
    return EnrollmentResult(customer_id, created, reference_ids, warnings, model.version)


def _store_references(
    store: Store, model: SignatureModel, policy: EnrollmentPolicy, customer_id: str,
    display_name: str | None, prepared: list[PreparedImage], force: bool,
) -> tuple[list[int], list[EnrollmentWarning], bool]:
    """The checks and inserts of one enrollment, in one transaction."""
    with store.transaction() as session:
        customer = find_customer(session, customer_id)
        _reject_duplicates(session, prepared)
        existing = _existing_vectors(session, customer, model.version)
        warnings = _consistency_warnings(model, policy, existing, prepared)
        warnings += _cross_match_warnings(store, session, model, policy, customer, prepared)
        blocking = [w for w in warnings if w.code in policy.blocking]
        if blocking and not force:
            raise EnrollmentRejectedError(
                "enrollment blocked: " + "; ".join(w.message for w in blocking),
                [w.to_dict() for w in warnings],
            )
        created = customer is None
        if customer is None:
            customer = Customer(external_id=customer_id, display_name=display_name)
            session.add(customer)
        rows = [Reference(customer=customer, image_png=item.image_png, sha256=item.sha256,
                          embedding=embedding_to_bytes(item.embedding), model_version=model.version)
                for item in prepared]
        session.add_all(rows)
        session.flush()
        reference_ids = [row.id for row in rows]
    return reference_ids, warnings, created


def prepare_images(store: Store, model: SignatureModel, images: list[ImageInput]) -> list[PreparedImage]:
    """Read, hash, validate and preprocess every image, then embed them in one batch.

    Raises:
        ImageError (naming the image's position), DuplicateReferenceError (twice in the request).
    """
    settings = store.settings
    hashes: list[str] = []
    canvases: list[np.ndarray] = []
    for number, image in enumerate(images, start=1):
        try:
            data = read_image_bytes(image, settings.max_upload_bytes)
            canvases.append(preprocess(data, max_pixels=settings.max_image_pixels))
        except ImageError as error:
            raise type(error)(f"image {number}: {error.message}") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest in hashes:
            raise DuplicateReferenceError(
                f"image {number} is the same file as image {hashes.index(digest) + 1}"
            )
        hashes.append(digest)
    stored = [(np.round(canvas[:, :, 0] * 255.0)).astype(np.uint8) for canvas in canvases]
    embeddings = model.embed_preprocessed(np.stack(stored).astype(np.float32)[..., None] / 255.0)
    return [PreparedImage(digest, _png(pixels), vector)
            for digest, pixels, vector in zip(hashes, stored, embeddings)]


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _reject_duplicates(session: Session, prepared: list[PreparedImage]) -> None:
    """Raise DuplicateReferenceError when an upload is already a reference of any customer."""
    hashes = [item.sha256 for item in prepared]
    found = session.execute(
        select(Reference.sha256, Customer.external_id).join(Customer)
        .where(Reference.sha256.in_(hashes))
    ).first()
    if found is not None:
        number = hashes.index(found[0]) + 1
        raise DuplicateReferenceError(
            f"image {number} is already enrolled as a reference of customer {found[1]!r}"
        )


def _existing_vectors(session: Session, customer: Customer | None, model_version: str) -> np.ndarray:
    """The customer's current-version embeddings; refuses references of another model version."""
    if customer is None:
        return np.zeros((0, 0), dtype=np.float32)
    versions = set(session.scalars(
        select(Reference.model_version).where(Reference.customer_id == customer.id).distinct()
    ))
    if versions - {model_version}:
        raise ModelVersionMismatchError(
            f"customer {customer.external_id!r} has references of another model version; "
            "run `sigverify reindex` first"
        )
    found = reference_vectors(session, [customer.id], model_version)
    return found[customer.id][1] if customer.id in found else np.zeros((0, 0), dtype=np.float32)


def _consistency_warnings(
    model: SignatureModel, policy: EnrollmentPolicy, existing: np.ndarray, prepared: list[PreparedImage]
) -> list[EnrollmentWarning]:
    """Warn about new references that do not look like the customer's other references."""
    new = np.stack([item.embedding for item in prepared])
    return consistency_warnings(model, policy.consistency_threshold, existing, new,
                                [f"image {row + 1}" for row in range(len(new))])


def consistency_warnings(
    model: SignatureModel, threshold: float, existing: np.ndarray, new: np.ndarray, labels: list[str]
) -> list[EnrollmentWarning]:
    """An ``inconsistent_reference`` warning for each row of ``new`` whose median head score
    against all other references (``existing`` and the other rows of ``new``) is below ``threshold``.
    """
    everything = np.concatenate([existing, new]) if existing.size else new
    if len(everything) < 2:
        return []
    matrix = model.score_matrix(new, everything)
    warnings = []
    for row, item_scores in enumerate(matrix):
        others = np.delete(item_scores, len(existing) + row)
        median = float(np.median(others))
        if median < threshold:
            warnings.append(EnrollmentWarning(
                INCONSISTENT_REFERENCE,
                f"{labels[row]} scores {median:.3f} against the customer's other references "
                f"(below {threshold:.3f}); is it the right signature?",
                row, {"score": round(median, 6)},
            ))
    return warnings


def _cross_match_warnings(
    store: Store, session: Session, model: SignatureModel, policy: EnrollmentPolicy,
    customer: Customer | None, prepared: list[PreparedImage],
) -> list[EnrollmentWarning]:
    """Warn about new references that would verify as another customer (1:N via the index)."""
    new = np.stack([item.embedding for item in prepared])
    return cross_match_warnings(store, session, model, policy.cross_match_threshold, customer, new,
                                [f"image {row + 1}" for row in range(len(new))])


def cross_match_warnings(
    store: Store, session: Session, model: SignatureModel, threshold: float, customer: Customer | None,
    new: np.ndarray, labels: list[str],
) -> list[EnrollmentWarning]:
    """A ``matches_other_customer`` warning for each row of ``new`` that would verify, at
    ``threshold``, as a customer other than ``customer`` (candidates from the FAISS index).
    """
    index = store.index
    if index is None or len(index) == 0 or index.model_version != model.version:
        return []
    _, hits = index.search(new, CROSS_MATCH_NEIGHBOURS)
    found = sorted({int(i) for i in hits.ravel() if i >= 0})
    owners = dict(session.execute(
        select(Reference.customer_id, Customer.external_id).join(Customer)
        .where(Reference.id.in_(found)).distinct()
    ).all()) if found else {}
    owners.pop(customer.id if customer is not None else -1, None)
    vectors = reference_vectors(session, list(owners), model.version)
    warnings = []
    for row, vector in enumerate(new):
        for pk, (_, matrix) in vectors.items():
            score, _ = score_against(model, matrix, vector)
            if score >= threshold:
                warnings.append(EnrollmentWarning(
                    MATCHES_OTHER_CUSTOMER,
                    f"{labels[row]} matches customer {owners[pk]!r} (score {score:.3f})",
                    row, {"other_customer_id": owners[pk], "score": round(score, 6)},
                ))
    return warnings


def _index_new_references(
    store: Store, model_version: str, reference_ids: list[int], prepared: list[PreparedImage], save: bool
) -> None:
    """After the commit: add the new vectors to the in-memory index; write its file when due (and
    ``save``)."""
    index = store.index
    if index is None or index.model_version != model_version:
        return
    index.add(np.asarray(reference_ids, dtype=np.int64), np.stack([p.embedding for p in prepared]))
    index_changed(store, len(reference_ids), save)
