"""Customers: ID validation, look-up, listing and deletion (references, images and index entries)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.consistency import index_changed
from store.database import Store, embedding_from_bytes
from store.errors import CustomerExistsError, CustomerNotFoundError, InvalidCustomerIdError
from store.schema import CUSTOMER_ID_MAX_LENGTH, Customer, Reference, Verification

SelectT = TypeVar("SelectT", bound=Select)  # type: ignore[type-arg]
CUSTOMER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_customer_id(customer_id: object) -> str:
    """Return ``customer_id`` if it is a valid external ID, else raise InvalidCustomerIdError.

    Valid: 1 to 64 characters from ``A-Z a-z 0-9 . _ -``, starting with a letter or digit (so no
    spaces, control characters, path separators, quotes or SQL).
    """
    if not isinstance(customer_id, str) or not customer_id:
        raise InvalidCustomerIdError("the customer ID is empty")
    if len(customer_id) > CUSTOMER_ID_MAX_LENGTH:
        raise InvalidCustomerIdError(
            f"the customer ID has {len(customer_id)} characters; at most {CUSTOMER_ID_MAX_LENGTH}"
        )
    if not CUSTOMER_ID_PATTERN.fullmatch(customer_id):
        raise InvalidCustomerIdError(
            f"the customer ID {customer_id!r} may only hold letters, digits, '.', '_' and '-', "
            "and must start with a letter or digit"
        )
    return customer_id


def find_customer(session: Session, customer_id: str) -> Customer | None:
    """The customer with this external ID, or None (the ID is validated first)."""
    validate_customer_id(customer_id)
    return session.scalar(select(Customer).where(Customer.external_id == customer_id))


def get_customer(session: Session, customer_id: str) -> Customer:
    """The customer with this external ID.

    Raises:
        InvalidCustomerIdError, CustomerNotFoundError.
    """
    customer = find_customer(session, customer_id)
    if customer is None:
        raise CustomerNotFoundError(f"no customer with ID {customer_id!r}")
    return customer


@dataclass(frozen=True)
class CustomerSummary:
    """A customer as listed: ID, name, status, threshold, number of references, creation time."""

    customer_id: str
    display_name: str | None
    status: str
    threshold: float | None
    reference_count: int
    created_at: str


def list_customers(
    store: Store, limit: int | None = None, offset: int = 0, search: str | None = None
) -> list[CustomerSummary]:
    """Customers ordered by external ID, with their reference counts.

    ``search`` keeps customers whose ID or display name contains it (case-insensitive).
    """
    counts = (
        select(Reference.customer_id, func.count(Reference.id).label("n"))
        .group_by(Reference.customer_id).subquery()
    )
    query = _matching(
        select(Customer, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.customer_id == Customer.id), search
    ).order_by(Customer.external_id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with store.sessions() as session:
        return [
            CustomerSummary(c.external_id, c.display_name, c.status, c.threshold, int(n),
                            c.created_at.isoformat(timespec="seconds"))
            for c, n in session.execute(query)
        ]


def count_customers(store: Store, search: str | None = None) -> int:
    """How many customers :func:`list_customers` would list without a limit."""
    with store.sessions() as session:
        return int(session.scalar(_matching(select(func.count(Customer.id)), search)) or 0)


def _matching(query: SelectT, search: str | None) -> SelectT:
    """``query`` restricted to customers whose ID or name contains ``search``."""
    if not search:
        return query
    return query.where(or_(Customer.external_id.icontains(search, autoescape=True),
                           Customer.display_name.icontains(search, autoescape=True)))


def create_customer(store: Store, customer_id: str, display_name: str | None = None) -> CustomerSummary:
    """Create a customer without references (they are enrolled later).

    Raises:
        InvalidCustomerIdError, CustomerExistsError.
    """
    validate_customer_id(customer_id)
    try:
        with store.transaction() as session:
            if find_customer(session, customer_id) is not None:
                raise CustomerExistsError(f"customer {customer_id!r} already exists")
            customer = Customer(external_id=customer_id, display_name=display_name or None)
            session.add(customer)
            session.flush()
            return CustomerSummary(customer_id, customer.display_name, customer.status, None, 0,
                                   customer.created_at.isoformat(timespec="seconds"))
    except IntegrityError:
        raise CustomerExistsError(f"customer {customer_id!r} already exists") from None


@dataclass(frozen=True)
class ReferenceSummary:
    """One reference as listed: id, hash of the uploaded file, model version, creation time."""

    id: int
    sha256: str
    model_version: str
    created_at: str


@dataclass(frozen=True)
class CustomerDetail:
    """A customer with their references and the number of verifications against them."""

    customer_id: str
    display_name: str | None
    status: str
    threshold: float | None
    created_at: str
    references: list[ReferenceSummary]
    verifications: int


def describe_customer(store: Store, customer_id: str) -> CustomerDetail:
    """The customer, their references (in id order) and their verification count.

    Raises:
        InvalidCustomerIdError, CustomerNotFoundError.
    """
    with store.sessions() as session:
        customer = get_customer(session, customer_id)
        rows = session.execute(  # the columns only: not the images and embeddings
            select(Reference.id, Reference.sha256, Reference.model_version, Reference.created_at)
            .where(Reference.customer_id == customer.id).order_by(Reference.id)
        )
        references = [ReferenceSummary(int(row_id), sha256, version, created.isoformat(timespec="seconds"))
                      for row_id, sha256, version, created in rows]
        verifications = session.scalar(
            select(func.count(Verification.id)).where(Verification.customer_id == customer.id)
        )
        return CustomerDetail(customer.external_id, customer.display_name, customer.status,
                              customer.threshold, customer.created_at.isoformat(timespec="seconds"),
                              references, int(verifications or 0))


def set_customer_threshold(store: Store, customer_id: str, threshold: float | None) -> None:
    """Set (or with None clear) the customer's own decision threshold, a value in [0, 1].

    Raises:
        InvalidCustomerIdError, CustomerNotFoundError, ValueError (threshold outside [0, 1]).
    """
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"a threshold is a score in [0, 1], got {threshold}")
    with store.transaction() as session:
        get_customer(session, customer_id).threshold = threshold


def delete_customer(store: Store, customer_id: str) -> int:
    """Delete a customer with their references (images, embeddings) and index entries.

    Audit rows stay, stripped of the query hash and reference links. Returns the number of
    references removed.

    Raises:
        InvalidCustomerIdError, CustomerNotFoundError.
    """
    with store.transaction() as session:
        customer = get_customer(session, customer_id)
        reference_ids = list(session.scalars(
            select(Reference.id).where(Reference.customer_id == customer.id)
        ))
        session.execute(
            update(Verification).where(Verification.customer_id == customer.id)
            .values(customer_id=None, best_reference_id=None, query_sha256=None)
        )
        session.delete(customer)
    if store.index is not None and reference_ids:
        index_changed(store, store.index.remove(np.asarray(reference_ids, dtype=np.int64)))
    return len(reference_ids)


def reference_vectors(
    session: Session, customer_ids: list[int], model_version: str
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per customer row id: (reference ids, embeddings) of ``model_version``, in id order."""
    rows: dict[int, tuple[list[int], list[np.ndarray]]] = {}
    if not customer_ids:
        return {}
    # Ordered as the (customer_id, model_version) index is: ordered by id alone, SQLite without
    # statistics reads every reference through the model_version index to skip a sort.
    query = (
        select(Reference.customer_id, Reference.id, Reference.embedding)
        .where(Reference.customer_id.in_(customer_ids), Reference.model_version == model_version)
        .order_by(Reference.customer_id, Reference.id)
    )
    for customer_pk, reference_id, data in session.execute(query):
        ids, vectors = rows.setdefault(int(customer_pk), ([], []))
        ids.append(int(reference_id))
        vectors.append(embedding_from_bytes(data))
    return {
        key: (np.asarray(ids, dtype=np.int64), np.stack(vectors)) for key, (ids, vectors) in rows.items()
    }
