"""Fit the L1 head on pairs of training-writer embeddings, after the twin is trained.

The twin is trained with a metric objective over whole batches, where random-writer pairs
dominate; the head that comes out of it ranks skilled forgeries worse than the embedding itself
does. So the finished twin's embeddings of the *training* writers are paired (genuine-genuine,
genuine-skilled forgery, genuine-other writer), and a balanced, L2-regularised logistic regression on
``|a - b|`` gives the head's Dense(1) weights. The same pass measures ``centre`` of the per-customer
score normalisation: the median, over training writers, of their references' mean logit against
each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from siamese.scoring import ScoreNormalisation, reference_agreement


@dataclass(frozen=True)
class HeadFitConfig:
    """Pairs drawn per training writer, regularisation, and the decision rule's normalisation strength
    and number of best references averaged (0: all)."""

    genuine_pairs: int = 60
    skilled_pairs: int = 40
    random_pairs: int = 20
    regularisation: float = 0.1  # scikit-learn's C: smaller is stronger
    normalisation_strength: float = 0.5
    top_references: int = 3  # the decision averages the query's logits against its 3 best references
    references: int = 5
    seed: int = 0


def sample_pairs(
    embeddings: np.ndarray,
    genuine: dict[str, list[int]],
    forged: dict[str, list[int]],
    writers: Sequence[str],
    config: HeadFitConfig,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(|a-b| features, labels, counts per pair kind) from the given writers' embeddings."""
    rng = np.random.default_rng(config.seed)
    pool = [w for w in writers if len(genuine.get(w, [])) >= 2]
    if len(pool) < 2:
        raise ValueError("fitting the head needs at least two writers with two genuine signatures")
    first: list[int] = []
    second: list[int] = []
    labels: list[int] = []
    counts = {"genuine": 0, "skilled": 0, "random": 0}
    for writer in pool:
        own = np.asarray(genuine[writer])
        for _ in range(config.genuine_pairs):
            a, b = rng.choice(own, size=2, replace=False)
            first.append(int(a))
            second.append(int(b))
            labels.append(1)
        counts["genuine"] += config.genuine_pairs
        if forged.get(writer):
            a_side = rng.choice(own, size=config.skilled_pairs)
            b_side = rng.choice(np.asarray(forged[writer]), size=config.skilled_pairs)
            first += a_side.tolist()
            second += b_side.tolist()
            labels += [0] * config.skilled_pairs
            counts["skilled"] += config.skilled_pairs
        others = [w for w in pool if w != writer]
        for other in rng.choice(len(others), size=config.random_pairs):
            first.append(int(rng.choice(own)))
            second.append(int(rng.choice(genuine[others[other]])))
            labels.append(0)
        counts["random"] += config.random_pairs
    features = np.abs(embeddings[first] - embeddings[second])
    return features, np.asarray(labels), counts


def fit_logistic_head(
    features: np.ndarray, labels: np.ndarray, regularisation: float
) -> tuple[np.ndarray, float]:
    """(kernel of shape (D,), bias) of a class-balanced logistic regression on ``|a - b|``."""
    from sklearn.linear_model import LogisticRegression

    regression = LogisticRegression(C=regularisation, class_weight="balanced", max_iter=5000)
    regression.fit(features, labels)
    return regression.coef_[0].astype(np.float32), float(regression.intercept_[0])


def normalisation_centre(
    model: Any, embeddings: np.ndarray, genuine: dict[str, list[int]], writers: Sequence[str],
    references: int, seed: int,
) -> float:
    """Median over writers of the mean logit of K random references against each other."""
    rng = np.random.default_rng(seed)
    values = []
    for writer in writers:
        own = genuine.get(writer, [])
        if len(own) >= references >= 2:
            chosen = embeddings[rng.choice(own, size=references, replace=False)]
            agreement = reference_agreement(model.score_matrix(chosen, chosen))
            if agreement is not None:
                values.append(agreement)
    return float(np.median(values)) if values else 0.0


def fit_head(
    model: Any, embeddings: np.ndarray, genuine: dict[str, list[int]], forged: dict[str, list[int]],
    writers: Sequence[str], config: HeadFitConfig = HeadFitConfig(),
) -> dict[str, Any]:
    """Refit ``model``'s head on ``writers`` (training writers only!) and set its normalisation.

    Returns:
        The model card's ``head_fit`` section (also holding the ``score_normalisation``).
    """
    features, labels, counts = sample_pairs(embeddings, genuine, forged, writers, config)
    kernel, bias = fit_logistic_head(features, labels, config.regularisation)
    model.set_head_weights(kernel, bias)
    centre = normalisation_centre(model, embeddings, genuine, writers, config.references, config.seed)
    model.normalisation = ScoreNormalisation(config.normalisation_strength, centre, config.top_references)
    accuracy = float(((features @ kernel + bias > 0) == labels.astype(bool)).mean())
    return {
        "method": "class-balanced logistic regression on |a-b| of training-writer pairs",
        "pairs": counts,
        "writers": len(writers),
        "training_accuracy": accuracy,
        "config": asdict(config),
        "score_normalisation": model.normalisation.to_dict(),
    }

