"""How the scores of one query against a customer's K references become one decision score.

The verification service and ``sigverify evaluate`` both call :func:`aggregate_scores`, so the
accuracy measured offline is the accuracy of the deployed decision rule.
"""

from __future__ import annotations

import numpy as np


def aggregate_scores(
    query_scores: np.ndarray, reference_scores: np.ndarray | None = None
) -> float:
    """One score in [0, 1] for a query from its head scores against the K references.

    Args:
        query_scores: shape ``(K,)``, the query against each reference.
        reference_scores: shape ``(K, K)``, the references against each other (the diagonal is
            ignored); reserved for per-customer normalisation, unused by the current rule.

    Returns:
        The mean of ``query_scores``.
    """
    scores = np.asarray(query_scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError("no reference scores to aggregate")
    return float(scores.mean())
