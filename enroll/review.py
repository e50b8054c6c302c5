"""A second look at a customer's stored references: the consistency warning of enrollment, now."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from enroll.policy import EnrollmentPolicy, EnrollmentWarning
from enroll.service import consistency_warnings
from store.customers import get_customer, reference_vectors
from store.database import Store
from verify.runtime import decision_threshold

if TYPE_CHECKING:
    from siamese.model import SignatureModel


def review_references(store: Store, model: SignatureModel, customer_id: str) -> list[EnrollmentWarning]:
    """``inconsistent_reference`` warnings for the customer's current-model references.

    A warning's ``image`` is the position of the reference in id order; ``reference_id`` names it.

    Raises:
        InvalidCustomerIdError, CustomerNotFoundError.
    """
    with store.sessions() as session:
        customer = get_customer(session, customer_id)
        found = reference_vectors(session, [customer.id], model.version).get(customer.id)
        threshold = decision_threshold(store.settings, model, customer)
    if found is None:
        return []
    ids, vectors = found
    policy = EnrollmentPolicy.from_settings(store.settings, threshold)
    warnings = consistency_warnings(model, policy.consistency_threshold, np.zeros((0, 0), np.float32),
                                    vectors, [f"reference {int(i)}" for i in ids])
    return [EnrollmentWarning(w.code, w.message, w.image, {**w.details, "reference_id": int(ids[w.image])})
            for w in warnings]
