"""A second look at a customer's stored references: the warnings of enrollment, computed now."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from enroll.policy import EnrollmentPolicy, EnrollmentWarning
from enroll.service import consistency_warnings, cross_match_warnings
from store.customers import get_customer, reference_vectors
from store.database import Store
from verify.runtime import decision_threshold

if TYPE_CHECKING:
    from siamese.model import SignatureModel


def review_references(store: Store, model: SignatureModel, customer_id: str) -> list[EnrollmentWarning]:
    """``inconsistent_reference`` and ``matches_other_customer`` warnings for the customer's
    current-model references, with the enrollment policy's thresholds.

    A warning's ``image`` is the position of the reference in id order; ``reference_id`` names it.
    The cross-customer check searches ``store.index``: callers that share the index between threads
    hold their lock.

    Raises:
        InvalidCustomerIdError, CustomerNotFoundError.
    """
    policy = EnrollmentPolicy.from_settings(store.settings, decision_threshold(store.settings, model))
    with store.sessions() as session:
        customer = get_customer(session, customer_id)
        found = reference_vectors(session, [customer.id], model.version).get(customer.id)
        if found is None:
            return []
        ids, vectors = found
        labels = [f"reference {int(i)}" for i in ids]
        warnings = consistency_warnings(model, policy.consistency_threshold, np.zeros((0, 0), np.float32),
                                        vectors, labels)
        warnings += cross_match_warnings(store, session, model, policy.cross_match_threshold, customer,
                                         vectors, labels)
    return [EnrollmentWarning(w.code, w.message, w.image, {**w.details, "reference_id": int(ids[w.image])})
            for w in warnings]
