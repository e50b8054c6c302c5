"""Cross-validation results of ``bench/crossval.sh``: a recipe judged on every train + validation writer.

Each fold's run validated on its own fold of writers. Two models of every run are scored there with
the service's rule (head refitted on that run's training writers, score normalisation on), over
several reference draws:

- ``best``: the epoch the run kept by its validation EER (chosen on these same writers: optimistic);
- ``last``: the last epoch (no choice made on them).

The summary is the mean over folds of each fold's pooled skilled-forgery EER, the difference
last - best, and the validation EER per epoch (the head as trained), averaged over folds. Given a
second prefix, the two recipes are compared fold by fold on the same writers. Differences come with
a paired bootstrap: writers are resampled within each fold and the difference of the fold-mean EER
is recomputed each time.

    python -m bench.crossval PREFIX [OTHER_PREFIX] [--seeds 5] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.compare_models import DATASETS, NAMES, pooled_eer, writer_trials

VARIANTS = ("best", "last")


def fold_dirs(prefix: str) -> list[Path]:
    """The finished runs ``PREFIX-fold1``, ``PREFIX-fold2``, ... in fold order."""
    found = []
    fold = 1
    while (Path(f"{prefix}-fold{fold}") / "model.json").is_file():
        found.append(Path(f"{prefix}-fold{fold}"))
        fold += 1
    if not found:
        raise SystemExit(f"no finished cross-validation run at {prefix}-fold1/model.json")
    return found


def last_epoch_model(run: Path, card: dict):
    """The run's last epoch with its head refitted on the run's training writers (as ``train`` does)."""
    from siamese.head_fit import HeadFitConfig
    from siamese.model import SignatureModel
    from siamese.training import fit_head_on_training_writers, load_training_writers

    model = SignatureModel.load(run / "work" / "last.keras")
    data = load_training_writers([DATASETS / name for name in NAMES], set(card["split"]["train"]),
                                 Path("var/cache"), progress=False)
    fit_head_on_training_writers(model, data, HeadFitConfig(**card["hyperparameters"]["head"]))
    return model


def fold_trials(prefix: str, seeds: int) -> list[dict[str, dict]]:
    """Per fold, per variant: each validation writer's (labels, scores) of genuine vs skilled trials."""
    from siamese.model import SignatureModel

    folds = []
    for run in fold_dirs(prefix):
        card = json.loads((run / "model.json").read_text())
        writers = sorted(card["split"]["validation"])
        models = {"best": SignatureModel.load(run / "model.keras"), "last": last_epoch_model(run, card)}
        folds.append({name: writer_trials(model, writers, seeds) for name, model in models.items()})
    return folds


def epoch_curve(prefix: str) -> list[float]:
    """Validation skilled EER (head as trained) per epoch, averaged over the folds that reached it."""
    histories = [json.loads((run / "model.json").read_text())["history"] for run in fold_dirs(prefix)]
    length = min(len(history) for history in histories)
    return [float(np.mean([h[i]["validation_eer_skilled"] for h in histories])) for i in range(length)]


def fold_mean(folds: list[dict[str, dict]], variant: str, samples: list[list[str]] | None = None) -> float:
    """Mean over folds of the pooled EER of each fold's writers (or of the resampled ``samples``)."""
    return float(np.mean([pooled_eer(fold[variant], samples[i] if samples else sorted(fold[variant]))
                          for i, fold in enumerate(folds)]))


def summary(prefix: str, folds: list[dict[str, dict]]) -> dict:
    """Per-fold and fold-mean EER of both variants, and the epoch curve."""
    return {
        "prefix": prefix,
        "folds": len(folds),
        "writers": sum(len(fold["best"]) for fold in folds),
        **{f"eer_skilled_{v}": fold_mean(folds, v) for v in VARIANTS},
        **{f"per_fold_{v}": [pooled_eer(f[v], sorted(f[v])) for f in folds] for v in VARIANTS},
        "validation_eer_by_epoch": [round(x, 4) for x in epoch_curve(prefix)],
    }


def compare(folds_a: list[dict[str, dict]], folds_b: list[dict[str, dict]], variant: str,
            rounds: int, variant_b: str | None = None) -> dict:
    """B - A in fold-mean EER of one variant (of ``variant`` in A and ``variant_b`` in B, when given),
    with a 95% interval resampling writers within folds."""
    variant_b = variant_b or variant
    if [sorted(f["best"]) for f in folds_a] != [sorted(f["best"]) for f in folds_b]:
        raise SystemExit("the two recipes were not cross-validated on the same folds")
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(rounds):
        samples = [list(rng.choice(sorted(f[variant]), size=len(f[variant]))) for f in folds_a]
        differences.append(fold_mean(folds_b, variant_b, samples) - fold_mean(folds_a, variant, samples))
    low, high = np.percentile(differences, [2.5, 97.5])
    return {"difference": fold_mean(folds_b, variant_b) - fold_mean(folds_a, variant),
            "interval_95": [float(low), float(high)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix")
    parser.add_argument("other_prefix", nargs="?")
    parser.add_argument("--seeds", type=int, default=5, help="reference draws per writer")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args()
    folds_a = fold_trials(args.prefix, args.seeds)
    result = {"a": summary(args.prefix, folds_a),
              "a_last_minus_best": compare(folds_a, folds_a, "best", args.rounds, variant_b="last")}
    if args.other_prefix:
        folds_b = fold_trials(args.other_prefix, args.seeds)
        result["b"] = summary(args.other_prefix, folds_b)
        result["b_minus_a"] = {v: compare(folds_a, folds_b, v, args.rounds) for v in VARIANTS}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
