"""Cohort (T-)normalisation on leave-one-dataset-out models: does it lower the EER or carry the threshold?

For each ``PREFIX-DATASET`` model of ``bench/lodo.sh``: every query is scored with the service's rule
against its claimed writer (``raw``, as a logit) and against the references of ``--cohort`` other
writers of the same population; ``tnorm`` is (raw - cohort mean) / cohort spread. The threshold is
set at the EER of the model's own validation writers (its training datasets) and applied to every
writer of the held-out dataset. README "Leave one dataset out" quotes it for the strong-augmentation
runs:

    python -m bench.cohort_norm runs/lodo-strong [--cohort 30]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.compare_models import CACHE, DATASETS, NAMES


def population(model, datasets, writers=None):
    """Embeddings and genuine/forged indices of ``writers`` (all when None) of ``datasets``."""
    from siamese.canvas_cache import load_writer_canvases
    from siamese.evaluation import embed_canvases, index_records

    records, canvases, usable = load_writer_canvases([DATASETS / name for name in datasets], writers,
                                                     CACHE, progress=False)
    genuine, forged = index_records(records, usable)
    return embed_canvases(model, canvases, usable), genuine, forged


def scored_queries(model, embeddings, genuine, forged, writers, cohort_size):
    """(kind, raw logit, t-normed logit) of every query of the protocol over ``writers``."""
    from siamese.evaluation import build_trials
    from siamese.scoring import aggregate_scores, logit

    plan = build_trials(sorted(writers), genuine, forged, 5, 0)
    references = {writer: refs for writer, refs, _ in plan}
    rng = np.random.default_rng(1)

    def logits(queries, refs):
        matrix = embeddings[refs]
        agreement = model.score_matrix(matrix, matrix)
        return np.array([logit(aggregate_scores(row, agreement, model.normalisation))
                         for row in model.score_matrix(queries, matrix)])

    out = []
    for writer, refs, queries in plan:
        others = [name for name in references if name != writer]
        cohort = rng.choice(len(others), min(cohort_size, len(others)), replace=False)
        vectors = embeddings[[index for index, _ in queries]]
        raw = logits(vectors, refs)
        against = np.stack([logits(vectors, references[others[i]]) for i in cohort], axis=1)
        tnorm = (raw - against.mean(axis=1)) / (against.std(axis=1) + 1e-3)
        out += [(kind, r, t) for (_, kind), r, t in zip(queries, raw, tnorm)]
    return out


def rates(queries, column, threshold=None):
    """Skilled and random EER of one score column, the EER threshold, FAR/FRR at ``threshold``."""
    from siamese.metrics import equal_error_rate, far_frr

    kinds = np.array([q[0] for q in queries])
    scores = np.array([q[column] for q in queries])
    skilled, randoms = kinds != "random", kinds != "skilled"
    labels = (kinds[skilled] == "genuine").astype(int)
    eer, at = equal_error_rate(labels, scores[skilled])
    result = {"eer_skilled": eer, "eer_random": equal_error_rate(
        (kinds[randoms] == "genuine").astype(int), scores[randoms])[0], "threshold": at}
    if threshold is not None:
        result["far"], result["frr"] = far_frr(labels, scores[skilled], threshold)
    return result


def main() -> None:
    from siamese.model import SignatureModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", type=Path, help="the runs' prefix, e.g. runs/lodo-strong")
    parser.add_argument("--cohort", type=int, default=30, help="other writers per query")
    args = parser.parse_args()
    for held in NAMES:
        path = args.prefix.parent / f"{args.prefix.name}-{held}" / "model.keras"
        if not path.exists():
            continue
        model = SignatureModel.load(path)
        trained = [name for name in NAMES if name != held]
        validation = set(model.card["split"]["validation"])
        embeddings, genuine, forged = population(model, trained, validation)
        calibration = []
        for name in trained:
            writers = [w for w in validation if w.startswith(name + "/")]
            calibration += scored_queries(model, embeddings, genuine, forged, writers, args.cohort)
        embeddings, genuine, forged = population(model, [held])
        heldout = scored_queries(model, embeddings, genuine, forged, list(genuine), args.cohort)
        for column, name in ((1, "raw"), (2, "tnorm")):
            own = rates(calibration, column)
            result = rates(heldout, column, own["threshold"])
            print(f"{held:17s} {name:5s} validation EER {own['eer_skilled']:.4f} | held out: EER skilled "
                  f"{result['eer_skilled']:.4f} random {result['eer_random']:.4f}, at the validation "
                  f"threshold FAR {result['far']:.4f} FRR {result['frr']:.4f}")


if __name__ == "__main__":
    main()
