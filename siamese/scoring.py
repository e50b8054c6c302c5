"""How the scores of one query against a customer's K references become one decision score.

The verification service and ``sigverify evaluate`` both call :func:`aggregate_scores`, so the
accuracy measured offline is the accuracy of the deployed decision rule.

The rule works on logits (log-odds of the head's sigmoid): the query's mean logit against its
``top`` best-matching references (all K when ``top`` is 0 or at least K), minus ``strength`` times
how far the references' mean logit against each other lies above a typical customer's (``centre``).
A customer whose references agree closely is held to a higher standard; one who signs loosely is not
rejected for it. Averaging only the best matches forgives a customer who signs in more than one
style the references of the other style, and still asks a forger to match several references, not
one. The result goes back through the sigmoid, so the score stays in (0, 1) and is compared with one
global (or per-customer) threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LOGIT_LIMIT = 30.0  # |logit| cap, so scores of exactly 0 or 1 stay finite


@dataclass(frozen=True)
class ScoreNormalisation:
    """The decision rule's settings from a model card.

    ``strength`` 0 turns the per-customer normalisation off; ``centre`` is a typical reference logit;
    ``top`` is how many of the query's highest reference logits are averaged (0: all of them).
    """

    strength: float = 0.0
    centre: float = 0.0
    top: int = 0

    def __post_init__(self) -> None:
        if self.top < 0:
            raise ValueError(f"top must be 0 (all references) or positive, not {self.top}")

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> ScoreNormalisation:
        """The rule stored in a model card (a card without it: no normalisation, all references)."""
        data = card.get("score_normalisation") or {}
        return cls(float(data.get("strength", 0.0)), float(data.get("centre", 0.0)), int(data.get("top", 0)))

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready data for the model card."""
        return {"strength": self.strength, "centre": self.centre, "top": self.top}


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


def best_logits(query_scores: np.ndarray, top: int) -> np.ndarray:
    """Logits of the ``top`` highest scores (all of them when ``top`` is 0 or not below their number)."""
    values = logit(np.asarray(query_scores, dtype=np.float64).ravel())
    if 0 < top < values.size:
        values = np.sort(values)[-top:]
    return values


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
        normalisation: the model's rule (from its card): ``top`` and the per-customer normalisation.

    Returns:
        sigmoid(mean of the ``top`` highest query logits - strength * (reference agreement - centre)).
    """
    scores = np.asarray(query_scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError("no reference scores to aggregate")
    value = float(best_logits(scores, normalisation.top).mean())
    agreement = None if reference_scores is None else reference_agreement(reference_scores)
    if agreement is not None and normalisation.strength:
        value -= normalisation.strength * (agreement - normalisation.centre)
    return float(1.0 / (1.0 + np.exp(-value)))
