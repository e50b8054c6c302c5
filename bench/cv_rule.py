"""How the K reference scores of a query are combined, judged by cross-validation.

Until 2026-12-03 the service averaged a query's head logits against all the customer's K
references (``siamese.scoring.aggregate_scores``; now the card's ``top`` keeps the 3 highest). A
customer who signs in several styles may match only some of their references, which the mean
punishes; a forger may match one reference by chance, which a
maximum rewards. This scores every fold's validation writers (the last epoch of each run of
``bench/crossval.sh``, its head refitted as ``train`` does) with the mean over a subset of the K
logits instead of all of them, with the card's normalisation unchanged (and the card's own ``top``
set aside):

- ``mean``: all K (the service's rule before 2026-12-03);
- ``median``: the middle one;
- ``trimmed``: all but the lowest and the highest;
- ``top3``: the three highest;
- ``max`` / ``min``: the highest / the lowest.

Each is compared with ``mean`` on the same trials, pooled and on each dataset's writers alone, with
the paired bootstrap of ``bench.crossval`` (writers resampled within folds). The lowest of several
rules, picked and reported on the same writers, is flattered, and the intervals are not widened for
the number tried.

    python -m bench.cv_rule PREFIX [--rules mean median trimmed top3 max min] [--seeds 5]

``--lodo`` takes the runs of ``bench/lodo.sh`` instead (``PREFIX-DATASET``, each trained without
DATASET, its head refitted and its threshold calibrated by the script) and scores every writer of
each held-out dataset with each rule: a comparison that no choice has touched.

    python -m bench.cv_rule --lodo runs/lodo [--rules mean top3]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.compare_models import embed_writer_set, writer_trials
from bench.crossval import compare, dataset_folds, datasets_of, fold_cards, fold_mean, refitted_epoch

Subset = Callable[[np.ndarray], np.ndarray]

# sorted head scores in, the ones whose logits are averaged out (the logit keeps the order of scores)
SUBSETS: dict[str, Subset] = {
    "mean": lambda s: s,
    "median": lambda s: s[(len(s) - 1) // 2 : len(s) // 2 + 1],
    "trimmed": lambda s: s[1:-1] if len(s) > 2 else s,
    "top3": lambda s: s[-3:],
    "max": lambda s: s[-1:],
    "min": lambda s: s[:1],
}


def rule(subset: Subset) -> Callable[..., float]:
    """``aggregate_scores`` over a subset of a query's sorted reference scores (the card's ``top``
    set aside)."""
    from dataclasses import replace

    from siamese.scoring import NO_NORMALISATION, aggregate_scores

    def aggregate(query_scores: np.ndarray, reference_scores: Any = None, normalisation: Any = None) -> float:
        chosen = subset(np.sort(np.asarray(query_scores, dtype=np.float64).ravel()))
        everything = NO_NORMALISATION if normalisation is None else replace(normalisation, top=0)
        return aggregate_scores(chosen, reference_scores, everything)  # the card's top: not here

    return aggregate


def rule_trials(model: Any, writers: list[str], names: list[str], seeds: int) -> dict[str, dict]:
    """Per rule: the writers' trials (``writer_trials``) with the evaluation scored by that rule."""
    import siamese.evaluation as evaluation

    embedded = embed_writer_set(model, writers)
    service_rule = evaluation.aggregate_scores
    found = {}
    try:
        for name in names:
            evaluation.aggregate_scores = rule(SUBSETS[name])
            found[name] = writer_trials(model, writers, seeds, embedded)
    finally:
        evaluation.aggregate_scores = service_rule
    return found


def as_folds(per_fold: list[dict[str, dict]], name: str) -> list[dict[str, dict]]:
    """One rule's trials of every fold, under the epoch keys ``bench.crossval``'s helpers read."""
    return [{"best": fold[name], "last": fold[name]} for fold in per_fold]


def lodo_rows(prefix: str, names: list[str], seeds: int, rounds: int) -> dict[str, Any]:
    """Per held-out dataset of ``bench/lodo.sh``'s runs: each rule's skilled EER on all its writers
    and its difference from the mean of all K (paired bootstrap over writers); then the mean EER
    over the held-out datasets per rule."""
    from bench.compare_models import DATASETS, NAMES
    from siamese.datasets import load_dataset
    from siamese.model import SignatureModel

    held_out: dict[str, Any] = {}
    for name in NAMES:
        model = SignatureModel.load(Path(f"{prefix}-{name}") / "model.keras")
        writers = sorted({record.writer for record in load_dataset(DATASETS / name)})
        trials = [rule_trials(model, writers, names, seeds)]  # one "fold": the held-out dataset
        rows: dict[str, Any] = {}
        for rule in names:
            rows[rule] = {"eer_skilled": fold_mean(as_folds(trials, rule), "last")}
            if rule != "mean":
                rows[rule]["minus_mean"] = compare(as_folds(trials, "mean"), as_folds(trials, rule), "last",
                                                   rounds)
        held_out[name] = rows
    means = {rule: float(np.mean([found[rule]["eer_skilled"] for found in held_out.values()]))
             for rule in names}
    return {"prefix": prefix, "reference_draws": seeds, "held_out": held_out, "mean_over_held_out": means}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix")
    parser.add_argument("--rules", nargs="+", choices=sorted(SUBSETS), default=list(SUBSETS))
    parser.add_argument("--seeds", type=int, default=5, help="reference draws per writer")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--lodo", action="store_true", help="PREFIX holds the runs of bench/lodo.sh")
    args = parser.parse_args()
    names = ["mean"] + [name for name in args.rules if name != "mean"]
    if args.lodo:
        print(json.dumps(lodo_rows(args.prefix, names, args.seeds, args.rounds), indent=1))
        return
    runs, cards = fold_cards(args.prefix, partial=False)
    per_fold = [rule_trials(refitted_epoch(run, card, "last"), sorted(card["split"]["validation"]), names,
                            args.seeds) for run, card in zip(runs, cards)]
    service = as_folds(per_fold, "mean")
    rows = []
    for name in names:
        folds = as_folds(per_fold, name)
        row: dict[str, Any] = {
            "rule": name, "eer_skilled": fold_mean(folds, "last"),
            "per_dataset": {d: fold_mean(dataset_folds(folds, d), "last") for d in datasets_of(folds)}}
        if name != "mean":
            row["minus_mean"] = compare(service, folds, "last", args.rounds)
            row["minus_mean_per_dataset"] = {
                d: compare(dataset_folds(service, d), dataset_folds(folds, d), "last", args.rounds)
                for d in datasets_of(folds)}
        rows.append(row)
    print(json.dumps({"prefix": args.prefix, "epoch": "last", "folds": len(runs),
                      "reference_draws": args.seeds, "rules": rows}, indent=1))


if __name__ == "__main__":
    main()
