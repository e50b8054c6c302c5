"""One customer's reference signatures: the stored normalised image, and deleting one reference."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from store.consistency import index_changed
from store.customers import get_customer
from store.database import Store
from store.errors import ReferenceNotFoundError
from store.schema import Reference


def reference_image(store: Store, customer_id: str, reference_id: int) -> bytes:
    """The normalised canvas (PNG, ink light on black) of one of the customer's references.

    Raises:
        InvalidCustomerIdError, CustomerNotFoundError, ReferenceNotFoundError.
    """
    with store.sessions() as session:
        customer = get_customer(session, customer_id)
        data = session.scalar(select(Reference.image_png).where(
            Reference.id == reference_id, Reference.customer_id == customer.id))
    if data is None:
        raise ReferenceNotFoundError(f"customer {customer_id!r} has no reference {reference_id}")
    return data


def delete_reference(store: Store, customer_id: str, reference_id: int) -> None:
    """Delete one reference (image and embedding) and its index entry; audit rows stay.

    Raises:
        InvalidCustomerIdError, CustomerNotFoundError, ReferenceNotFoundError.
    """
    with store.transaction() as session:
        customer = get_customer(session, customer_id)
        row = session.scalar(select(Reference).where(
            Reference.id == reference_id, Reference.customer_id == customer.id))
        if row is None:
            raise ReferenceNotFoundError(f"customer {customer_id!r} has no reference {reference_id}")
        session.delete(row)
    if store.index is not None:
        index_changed(store, store.index.remove(np.asarray([reference_id], dtype=np.int64)))
