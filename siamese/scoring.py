"""How the scores of one query against a customer's K references become one decision score.

The verification service and ``sigverify evaluate`` both call :func:`aggregate_scores`, so the
accuracy measured offline is the accuracy of the deployed decision rule.

The rule works on logits (log-odds of the head's sigmoid): the query's mean logit against the K
references, minus ``strength`` times how far the references' mean logit against each other lies
above a typical customer's (``centre``). A customer whose references agree closely is held to a
higher standard; one who signs loosely is not rejected for it. The result goes back through the
sigmoid, so the score stays in (0, 1) and is compared with one global (or per-customer) threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LOGIT_LIMIT = 30.0  # |logit| cap, so scores of exactly 0 or 1 stay finite


@dataclass(frozen=True)
class ScoreNormalisation:
    """Per-customer normalisation: ``strength`` 0 turns it off; ``centre`` is a typical reference logit."""

    strength: float = 0.0
    centre: float = 0.0

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> ScoreNormalisation:
        """The normalisation stored in a model card (off when the card has none)."""
        data = card.get("score_normalisation") or {}
        return cls(float(data.get("strength", 0.0)), float(data.get("centre", 0.0)))

    def to_dict(self) -> dict[str, float]:
        """JSON-ready data for the model card."""
        return {"strength": self.strength, "centre": self.centre}


NO_NORMALISATION = ScoreNormalisation()


def logit(scores: np.ndarray) -> np.ndarray:
    """Log-odds of sigmoid scores, capped at +-LOGIT_LIMIT."""
    tiny = 1.0 / (1.0 + np.exp(LOGIT_LIMIT))
    clipped = np.clip(np.asarray(scores, dtype=np.float64), tiny, 1.0 - tiny)
    return np.log(clipped) - np.log1p(-clipped)


def reference_agreement(reference_scores: np.ndarray) -> float | None:
    """Mean logit of the references against each other (diagonal ignored); None below two references."""
    matrix = np.asarray(reference_scores, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        return None
    off_diagonal = matrix[~np.eye(matrix.shape[0], dtype=bool)]
    return float(logit(off_diagonal).mean())


def aggregate_scores(
    query_scores: np.ndarray,
    reference_scores: np.ndarray | None = None,
    normalisation: ScoreNormalisation = NO_NORMALISATION,
) -> float:
    """One score in (0, 1) for a query from its head scores against the K references.

    Args:
        query_scores: shape ``(K,)``, the query against each reference.
        reference_scores: shape ``(K, K)``, the references against each other; needed for the
            normalisation (a single reference, or None, means no normalisation).
        normalisation: the model's per-customer normalisation (from its card).

    Returns:
        sigmoid(mean logit of the query - strength * (reference agreement - centre)).
    """
    scores = np.asarray(query_scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError("no reference scores to aggregate")
    value = float(logit(scores).mean())
    agreement = None if reference_scores is None else reference_agreement(reference_scores)
    if agreement is not None and normalisation.strength:
        value -= normalisation.strength * (agreement - normalisation.centre)
    return float(1.0 / (1.0 + np.exp(-value)))
