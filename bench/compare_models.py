"""Two models on the same writers: pooled skilled-forgery EER of each and a paired bootstrap over writers.

Both models score the same trials (the ``sigverify evaluate`` protocol with the same references and
queries, over several reference draws); writers are resampled with replacement, and the EER
difference (B - A) is recomputed on each resample. An interval that contains 0 means the writers at
hand cannot tell the two models apart. Needs ../shared/datasets and both models' cards (same split).

    python -m bench.compare_models A.keras B.keras [--writers validation] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NAMES = ("cedar", "bhsig260-bengali", "bhsig260-hindi")
CACHE = Path("var/cache")  # the preprocessed canvases, shared with `sigverify train`


def dataset_dirs() -> list[Path]:
    """The dataset folders the models are scored on."""
    return [DATASETS / name for name in NAMES]


Embedded = tuple[np.ndarray, dict, dict]  # embeddings, genuine and forged image indices per writer
WriterTrials = dict[str, tuple[np.ndarray, np.ndarray]]  # per writer: labels (1 genuine), scores


def embed_writer_set(model, writers: list[str]) -> Embedded:
    """The writers' embeddings (twin only: a head refit does not change them) and their genuine and
    forged image indices."""
    from siamese.canvas_cache import load_writer_canvases
    from siamese.evaluation import embed_canvases, index_records

    records, canvases, usable = load_writer_canvases(dataset_dirs(), set(writers), CACHE, progress=False)
    genuine, forged = index_records(records, usable)
    return embed_canvases(model, canvases, usable), genuine, forged


def writer_trials(model, writers: list[str], seeds: int, embedded: Embedded | None = None) -> WriterTrials:
    """Per writer: (labels 1 genuine / 0 skilled forgery, scores) over ``seeds`` reference draws, with
    the model's head and rule (``embedded``: ``embed_writer_set`` of these writers, done already)."""
    from siamese.evaluation import build_trials, score_trials

    embeddings, genuine, forged = embedded or embed_writer_set(model, writers)
    found: dict[str, tuple[list[int], list[float]]] = {}
    for seed in range(seeds):
        trials = score_trials(model, embeddings, build_trials(sorted(set(writers)), genuine, forged, 5, seed))
        for writer, score, kind in zip(trials.owners, trials.scores, trials.kinds):
            if kind != "random":
                labels, scores = found.setdefault(writer, ([], []))
                labels.append(int(kind == "genuine"))
                scores.append(score)
    return {w: (np.asarray(labels), np.asarray(scores)) for w, (labels, scores) in found.items()}


def pooled(trials: WriterTrials, writers=None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of the given writers' trials together (default every writer, sorted);
    a writer given twice counts twice."""
    chosen = sorted(trials) if writers is None else writers
    return np.concatenate([trials[w][0] for w in chosen]), np.concatenate([trials[w][1] for w in chosen])


def pooled_eer(trials: WriterTrials, writers) -> float:
    """The skilled-forgery EER of the given writers' trials pooled together (repeats count twice)."""
    from siamese.metrics import equal_error_rate

    return float(equal_error_rate(*pooled(trials, writers))[0])


def compare(path_a: Path, path_b: Path, split: str, seeds: int, rounds: int) -> dict[str, float]:
    """EER of A and B, B - A, and its 95% bootstrap interval over writers."""
    from siamese.model import SignatureModel

    model_a, model_b = SignatureModel.load(path_a), SignatureModel.load(path_b)
    writers = sorted(model_a.card["split"][split])
    if sorted(model_b.card["split"][split]) != writers:
        raise SystemExit("the two models were not trained on the same split")
    trials_a, trials_b = writer_trials(model_a, writers, seeds), writer_trials(model_b, writers, seeds)
    found = paired_difference(trials_a, trials_b, rounds)
    return {"writers": found["writers"], "reference_draws": seeds, "eer_skilled_a": found["eer_a"],
            "eer_skilled_b": found["eer_b"], "difference": found["difference"],
            "interval_95": found["interval_95"]}


def paired_difference(trials_a: WriterTrials, trials_b: WriterTrials, rounds: int) -> dict[str, Any]:
    """Pooled skilled EER of A and of B on the writers both have, B - A, and its 95% interval over
    ``rounds`` resamples of those writers with replacement (seed 0)."""
    writers = sorted(set(trials_a) & set(trials_b))
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(rounds):
        sample = rng.choice(writers, size=len(writers), replace=True)
        differences.append(pooled_eer(trials_b, sample) - pooled_eer(trials_a, sample))
    low, high = np.percentile(differences, [2.5, 97.5])
    eer_a, eer_b = pooled_eer(trials_a, writers), pooled_eer(trials_b, writers)
    return {"writers": len(writers), "eer_a": eer_a, "eer_b": eer_b, "difference": eer_b - eer_a,
            "interval_95": [float(low), float(high)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_a", type=Path)
    parser.add_argument("model_b", type=Path)
    parser.add_argument("--writers", default="validation", choices=["validation", "test"])
    parser.add_argument("--seeds", type=int, default=5, help="reference draws per writer")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args()
    print(json.dumps(compare(args.model_a, args.model_b, args.writers, args.seeds, args.rounds), indent=1))


if __name__ == "__main__":
    main()
