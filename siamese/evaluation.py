"""The evaluation protocol shared by ``sigverify evaluate``, ``calibrate`` and training validation.

Per writer: K genuine references (seeded choice); positives are the writer's other genuine
signatures; negatives are the writer's skilled forgeries and one genuine signature from each of up to
20 other writers (random forgeries). A query's score is ``aggregate_scores`` of its head scores against
the K references: the same rule the verification service applies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siamese.canvas_cache import canvases_to_batch
from siamese.metrics import equal_error_rate, far_frr, roc_auc
from siamese.scoring import aggregate_scores

MAX_RANDOM_WRITERS = 20


@dataclass
class Trials:
    """All scored queries of one evaluation, with their kind: genuine, skilled or random."""

    scores: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    writers: int = 0
    owners: list[str] = field(default_factory=list)  # the claimed writer of each query

    def select(self, negative_kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Labels (1 genuine, 0 forgery) and scores of genuine queries plus one negative kind."""
        kinds = np.array(self.kinds)
        keep = (kinds == "genuine") | (kinds == negative_kind)
        return (kinds[keep] == "genuine").astype(int), np.array(self.scores)[keep]


def embed_canvases(model: Any, canvases: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Embeddings of the cached ``canvases`` where ``keep`` holds; the other rows stay zero."""
    embeddings = np.zeros((len(canvases), model.embedding_dim), dtype=np.float32)
    rows = np.flatnonzero(keep)
    if rows.size:
        embeddings[rows] = model.embed_preprocessed(canvases_to_batch(canvases[rows]))
    return embeddings


def build_trials(
    writers: Sequence[str],
    genuine_by_writer: dict[str, list[int]],
    forgeries_by_writer: dict[str, list[int]],
    references: int = 5,
    seed: int = 0,
) -> list[tuple[str, list[int], list[tuple[int, str]]]]:
    """Per writer: (writer, reference indices, [(query index, kind)]) following the protocol.

    Writers with fewer than ``references + 1`` genuine signatures are skipped.
    """
    rng = np.random.default_rng(seed)
    eligible = [w for w in sorted(writers) if len(genuine_by_writer.get(w, [])) > references]
    plan = []
    for writer in eligible:
        genuine = list(genuine_by_writer[writer])
        chosen = set(rng.choice(len(genuine), size=references, replace=False).tolist())
        refs = [genuine[i] for i in sorted(chosen)]
        queries = [(genuine[i], "genuine") for i in range(len(genuine)) if i not in chosen]
        queries += [(index, "skilled") for index in forgeries_by_writer.get(writer, [])]
        others = [w for w in eligible if w != writer]
        picked = rng.choice(len(others), size=min(MAX_RANDOM_WRITERS, len(others)), replace=False)
        for other_index in sorted(picked.tolist()):
            pool = genuine_by_writer[others[other_index]]
            queries.append((pool[int(rng.integers(len(pool)))], "random"))
        plan.append((writer, refs, queries))
    return plan


def score_trials(model: Any, embeddings: np.ndarray, plan: list) -> Trials:
    """Score every planned query against its writer's references with the service's rule."""
    trials = Trials(writers=len(plan))
    for writer, refs, queries in plan:
        ref_vectors = embeddings[refs]
        reference_matrix = model.score_matrix(ref_vectors, ref_vectors)
        query_indices = [index for index, _kind in queries]
        per_reference = model.score_matrix(embeddings[query_indices], ref_vectors)
        for row, (_index, kind) in zip(per_reference, queries):
            trials.scores.append(aggregate_scores(row, reference_matrix, model.normalisation))
            trials.kinds.append(kind)
            trials.owners.append(writer)
    return trials


def per_writer(trials: Trials, threshold: float) -> list[dict[str, Any]]:
    """Per claimed writer, worst first: its queries and its errors at ``threshold``.

    ``frr`` is the share of its genuine queries rejected, ``far_skilled`` / ``far_random`` the share
    of its skilled / random forgeries accepted (None when it has none of that kind).
    """
    scores, kinds, owners = np.array(trials.scores), np.array(trials.kinds), np.array(trials.owners)
    rows = []
    for writer in sorted(set(trials.owners)):
        own = owners == writer
        mine = {kind: scores[own & (kinds == kind)] for kind in ("genuine", "skilled", "random")}
        rows.append({"writer": writer, "genuine": len(mine["genuine"]), "skilled": len(mine["skilled"]),
                     "frr": _share(mine["genuine"] < threshold),
                     "far_skilled": _share(mine["skilled"] >= threshold),
                     "far_random": _share(mine["random"] >= threshold)})
    return sorted(rows, key=lambda r: -sum(r[key] or 0.0 for key in ("frr", "far_skilled", "far_random")))


def _share(flags: np.ndarray) -> float | None:
    """The fraction of true ``flags``, or None when there are none."""
    return float(flags.mean()) if flags.size else None


def summarize(trials: Trials, threshold: float) -> dict[str, Any]:
    """EERs, AUCs and FAR/FRR at ``threshold`` of scored trials, as a JSON-ready dict."""
    skilled_labels, skilled_scores = trials.select("skilled")
    random_labels, random_scores = trials.select("random")
    kinds = np.array(trials.kinds)
    result: dict[str, Any] = {
        "writers": trials.writers,
        "queries": len(trials.scores),
        "genuine": int((kinds == "genuine").sum()),
        "skilled": int((kinds == "skilled").sum()),
        "random": int((kinds == "random").sum()),
        "threshold": float(threshold),
    }
    if result["skilled"]:
        eer, eer_threshold = equal_error_rate(skilled_labels, skilled_scores)
        far, frr = far_frr(skilled_labels, skilled_scores, threshold)
        result.update(eer_skilled=eer, eer_skilled_threshold=eer_threshold,
                      auc=roc_auc(skilled_labels, skilled_scores), far=far, frr=frr)
    else:
        result.update(eer_skilled=None, eer_skilled_threshold=None, auc=None, far=None, frr=None)
    eer_random, _ = equal_error_rate(random_labels, random_scores)
    far_random, frr = far_frr(random_labels, random_scores, threshold)
    result.update(eer_random=eer_random, auc_random=roc_auc(random_labels, random_scores),
                  far_random=far_random)
    if result["frr"] is None:
        result["frr"] = frr
    return result


def index_records(records: Sequence[Any], usable: np.ndarray | None = None):
    """Group record indices by writer: (genuine_by_writer, forgeries_by_writer)."""
    genuine: dict[str, list[int]] = defaultdict(list)
    forged: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        if usable is not None and not usable[index]:
            continue
        (genuine if record.genuine else forged)[record.writer].append(index)
    return dict(genuine), dict(forged)
