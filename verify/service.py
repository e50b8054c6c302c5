"""Verification by customer ID, identification (1:N), and the two-image comparison.

Decision rule: the query is scored against each of the customer's references by the model's head;
``siamese.scoring.aggregate_scores`` (the rule ``sigverify evaluate`` measures on validation data)
turns those K scores into one; the decision is ``score >= threshold`` with the customer's threshold
if set, else ``settings.threshold``, else the model's calibrated threshold. Only references embedded
by the current model version are compared.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from siamese.scoring import aggregate_scores
from store.customers import get_customer, reference_vectors
from store.database import Store
from store.errors import (
    CustomerSuspendedError,
    ModelVersionMismatchError,
    NoReferencesError,
)
from store.schema import STATUS_ACTIVE, Customer, Reference, Verification
from verify.runtime import decision_threshold

if TYPE_CHECKING:
    from siamese.model import SignatureModel

ImageInput = bytes | str | Path


@dataclass(frozen=True)
class VerificationResult:
    """The outcome of one verification (also written to the audit table)."""

    customer_id: str
    score: float
    match: bool
    threshold: float
    reference_scores: list[dict[str, Any]]
    best_reference_id: int
    model_version: str
    verification_id: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """One customer found by identification, re-scored by the head against all its references."""

    customer_id: str
    score: float
    match: bool
    best_reference_id: int
    reference_scores: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Comparison:
    """The head score of two images and the decision at the threshold."""

    score: float
    match: bool
    threshold: float
    model_version: str


def read_image_bytes(image: ImageInput, max_bytes: int) -> bytes:
    """The upload's bytes (a path is read), refusing files larger than ``max_bytes``.

    Raises:
        UndecodableImageError: the file cannot be read.  ImageTooLargeError: too many bytes.
    """
    from siamese.errors import ImageTooLargeError, UndecodableImageError

    if isinstance(image, (str, Path)):
        path = Path(image)
        try:
            if path.stat().st_size > max_bytes:
                raise ImageTooLargeError(f"{path.name} has more than {max_bytes} bytes")
            return path.read_bytes()
        except OSError as error:
            raise UndecodableImageError(f"cannot read {path}: {error.strerror or error}") from None
    data = bytes(image)
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"the upload has {len(data)} bytes; at most {max_bytes}")
    return data


def score_against(
    model: SignatureModel, references: np.ndarray, query: np.ndarray
) -> tuple[float, np.ndarray]:
    """Aggregated score of ``query`` against ``references`` and the per-reference head scores."""
    per_reference = model.score(references, query[None, :])
    matrix = model.score_matrix(references, references)
    return aggregate_scores(per_reference, matrix, model.normalisation), per_reference


def embed_query(store: Store, model: SignatureModel, image: ImageInput) -> tuple[np.ndarray, str]:
    """Embed one query image; returns (vector, sha256 of its bytes)."""
    data = read_image_bytes(image, store.settings.max_upload_bytes)
    vector = model.embed([data], max_pixels=store.settings.max_image_pixels)[0]
    return vector, hashlib.sha256(data).hexdigest()


def verify_signature(
    store: Store, model: SignatureModel, customer_id: str, image: ImageInput,
    actor: str = "cli", channel: str = "cli",
) -> VerificationResult:
    """Verify ``image`` against the references of ``customer_id`` and write an audit row.

    Raises:
        InvalidCustomerIdError, CustomerNotFoundError, CustomerSuspendedError, NoReferencesError,
        ModelVersionMismatchError, ImageError (undecodable, too large, too small, no ink).
    """
    with store.sessions() as session:
        customer = _verifiable_customer(session, customer_id, model.version)
        ids, vectors = reference_vectors(session, [customer.id], model.version)[customer.id]
    query, query_sha256 = embed_query(store, model, image)
    score, per_reference = score_against(model, vectors, query)
    threshold = decision_threshold(store.settings, model, customer)
    best = int(ids[int(np.argmax(per_reference))])
    scores = [{"reference_id": int(i), "score": round(float(s), 6)} for i, s in zip(ids, per_reference)]
    with store.transaction() as session:
        row = Verification(
            customer_external_id=customer_id, customer_id=customer.id, score=score,
            reference_scores=scores, best_reference_id=best, decision=score >= threshold,
            threshold=threshold, model_version=model.version, query_sha256=query_sha256,
            actor=actor, channel=channel,
        )
        session.add(row)
        session.flush()
        verification_id = row.id
    return VerificationResult(customer_id, score, score >= threshold, threshold, scores, best,
                              model.version, verification_id)


def _verifiable_customer(session: Any, customer_id: str, model_version: str) -> Customer:
    """The customer, checked to be active and to have references of ``model_version``."""
    customer = get_customer(session, customer_id)
    if customer.status != STATUS_ACTIVE:
        raise CustomerSuspendedError(f"customer {customer_id!r} is {customer.status}")
    counts = dict(session.execute(
        select(Reference.model_version, func.count(Reference.id))
        .where(Reference.customer_id == customer.id)
        .group_by(Reference.model_version)
    ).all())
    if not counts:
        raise NoReferencesError(f"customer {customer_id!r} has no reference signatures")
    if not counts.get(model_version):
        raise ModelVersionMismatchError(
            f"the references of {customer_id!r} were embedded by another model version; "
            "run `sigverify reindex`"
        )
    return customer


def identify_signature(
    store: Store, model: SignatureModel, image: ImageInput, k: int = 5
) -> list[Candidate]:
    """The ``k`` customers whose references best match ``image``, best first.

    FAISS proposes nearest references; their customers are re-scored by the head against all of
    their references with the verification rule.
    """
    if store.index is None or store.index.model_version != model.version:
        raise ModelVersionMismatchError("the index is not of the current model; run `sigverify reindex`")
    query, _ = embed_query(store, model, image)
    _, hits = store.index.search(query[None, :], max(4 * k, 32))
    found = [int(i) for i in hits[0] if i >= 0]
    if not found:
        return []
    with store.sessions() as session:
        owners = dict(session.execute(
            select(Reference.id, Reference.customer_id).where(Reference.id.in_(found))
        ).all())
        customer_pks = list(dict.fromkeys(owners[i] for i in found if i in owners))
        names = dict(session.execute(
            select(Customer.id, Customer.external_id).where(Customer.id.in_(customer_pks))
        ).all())
        vectors = reference_vectors(session, customer_pks, model.version)
        thresholds = {c.id: decision_threshold(store.settings, model, c) for c in session.scalars(
            select(Customer).where(Customer.id.in_(customer_pks)))}
    candidates = []
    for pk, (ids, matrix) in vectors.items():
        score, per_reference = score_against(model, matrix, query)
        scores = [{"reference_id": int(i), "score": round(float(s), 6)} for i, s in zip(ids, per_reference)]
        candidates.append(Candidate(names[pk], score, score >= thresholds[pk],
                                    int(ids[int(np.argmax(per_reference))]), scores))
    candidates.sort(key=lambda candidate: -candidate.score)
    return candidates[:k]


def compare_signatures(
    model: SignatureModel, image_a: ImageInput, image_b: ImageInput, threshold: float,
    max_bytes: int = 10 * 1024 * 1024, max_pixels: int = 40_000_000,
) -> Comparison:
    """Head score of two images and match at ``threshold``; nothing is stored."""
    data = [read_image_bytes(image, max_bytes) for image in (image_a, image_b)]
    vectors = model.embed(data, max_pixels=max_pixels)
    score = float(model.score(vectors[:1], vectors[1:])[0])
    return Comparison(score, score >= threshold, threshold, model.version)
