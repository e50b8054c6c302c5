"""Cross-validation results of ``bench/crossval.sh``: a recipe judged on every train + validation writer.

Each fold's run validated on its own fold of writers. Two epochs of every run are scored there with
the service's rule (each one's head refitted on that run's training writers as ``train`` does, score
normalisation on), over several reference draws:

- ``best``: the epoch with the best validation EER (chosen on these same writers: optimistic);
- ``last``: the last epoch (no choice made on them).

The summary is the mean over folds of each fold's pooled skilled-forgery EER, the difference
last - best, and the validation EER per epoch (the head as trained), averaged over folds. Given a
second prefix, the two recipes are compared fold by fold on the same writers, pooled and on each
dataset's writers alone. Differences come with
a paired bootstrap: writers are resampled within each fold and the difference of the fold-mean EER
is recomputed each time. The interval covers the sampling of writers only: each fold is one training
run, and another seed moves a run by more than that (README, "Accuracy").

The fold runs live under ``runs/``, which a new checkout does not have. ``--save-dir DIR`` writes each
recipe scored from its runs to ``DIR/NAME.npz`` (NAME: the prefix's last part): every validation
writer's labels and scores per fold and epoch, with the summary. Such a file stands in for a prefix
later, so a recipe cross-validated in one session can be compared with one run in the next:

    python -m bench.crossval PREFIX [OTHER_PREFIX] [--seeds 5] [--rounds 1000] [--partial]
                             [--save-dir bench/cv-results]
    python -m bench.crossval bench/cv-results/cv3.npz runs/cv3-ema   # A saved, B from its runs

A cross-validation too long for one session is saved with ``--partial`` after its first folds, and
the next session trains the rest (``CV_CONTINUE=bench/cv-results/NAME.npz bench/crossval.sh``) and
joins them to it: ``python -m bench.crossval PREFIX --continue NAME.npz --save-dir DIR``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench import compare_models
from bench.compare_models import pooled_eer, writer_trials

VARIANTS = ("best", "last")


def fold_dirs(prefix: str, partial: bool = False, first: int = 1) -> list[Path]:
    """The runs ``PREFIX-fold1`` ... ``PREFIX-foldN``, every one finished and one fold of the same N;
    with ``partial``, the finished ones up to the first that is not; from fold ``first`` on."""
    runs = []
    folds = None
    for fold in range(first, 1000):
        card_file = Path(f"{prefix}-fold{fold}") / "model.json"
        if folds is not None and fold > folds:
            break
        if not card_file.is_file():
            if partial and runs:
                break
            raise SystemExit(f"{card_file} is missing: run every fold first (bench/crossval.sh)")
        hyper = json.loads(card_file.read_text())["hyperparameters"]
        folds = folds or hyper.get("folds")
        if (hyper.get("folds"), hyper.get("fold")) != (folds, fold) or not folds:
            raise SystemExit(f"{card_file} is not fold {fold} of {folds or 'a cross-validation'}")
        runs.append(card_file.parent)
    return runs


def head_config(card: dict, top: int | None = None):
    """The run's head settings (``HeadFitConfig``), with ``top`` best references averaged when given
    (0: all of them) instead of the card's or the default's."""
    from dataclasses import replace

    from siamese.head_fit import HeadFitConfig

    config = HeadFitConfig(**card["hyperparameters"]["head"])
    return config if top is None else replace(config, top_references=top)


def refitted_epoch(run: Path, card: dict, epoch: str, top: int | None = None):
    """The run's ``best`` or ``last`` epoch with its head refitted on the run's training writers (the
    decision averaging its ``top`` best references when given)."""
    from siamese.model import SignatureModel
    from siamese.training import fit_head_on_training_writers

    model = SignatureModel.load(run / "work" / f"{epoch}.keras")
    fit_head_on_training_writers(model, training_writers(card), head_config(card, top))
    return model


def training_writers(card: dict):
    """The run's training writers' records and canvases (``siamese.training.TrainingData``)."""
    from siamese.training import load_training_writers

    return load_training_writers(compare_models.dataset_dirs(), card["split"]["train"], compare_models.CACHE,
                                 progress=False)


def fold_trials(runs: list[Path], cards: list[dict], seeds: int,
                top: int | None = None) -> list[dict[str, dict]]:
    """Per fold, per variant: each validation writer's (labels, scores) of genuine vs skilled trials."""
    return [{epoch: writer_trials(refitted_epoch(run, card, epoch, top), sorted(card["split"]["validation"]),
                                  seeds) for epoch in VARIANTS} for run, card in zip(runs, cards)]


def fold_cards(prefix: str, partial: bool, first: int = 1) -> tuple[list[Path], list[dict]]:
    """The fold runs of a prefix (from fold ``first``) and their cards, each read once."""
    runs = fold_dirs(prefix, partial, first)
    return runs, [json.loads((run / "model.json").read_text()) for run in runs]


def fold_splits(cards: list[dict]) -> list[dict[str, list[str]]]:
    """Each fold's training and validation writers."""
    return [{part: sorted(card["split"][part]) for part in ("train", "validation")} for card in cards]


def fold_splits_of_summary(result: dict) -> list[dict[str, list[str]]]:
    """Each fold's training and validation writers, as a saved summary holds them."""
    return [{part: run[part] for part in ("train", "validation")} for run in result["runs"]]


def recipe(source: str, seeds: int, partial: bool,
           top: int | None = None) -> tuple[list[dict[str, dict]], dict]:
    """One recipe's fold trials and its summary: from a file of ``save_recipe`` (``.npz``), or scored
    from the runs of a prefix."""
    if source.endswith(".npz"):
        return load_recipe(Path(source))
    runs, cards = fold_cards(source, partial)
    folds = fold_trials(runs, cards, seeds, top)
    return folds, summary(source, folds, cards, seeds, top)


def continued(saved: tuple[list[dict[str, dict]], dict], folds: list[dict[str, dict]], result: dict,
              ) -> tuple[list[dict[str, dict]], dict]:
    """A saved recipe's first folds joined with the next ones scored in a later session (``result``
    their summary): one recipe, as if scored at once. Refused unless the later folds are the next
    ones of the same cross-validation, of the same recipe, scored the same way."""
    saved_folds, before = saved
    planned, done = before["folds_planned"], before["folds"]
    fold_numbers = [run["hyperparameters"].get("fold") for run in result["runs"]]
    if result["folds_planned"] != planned or fold_numbers != list(range(done + 1, done + 1 + len(folds))):
        raise SystemExit(f"the runs are folds {fold_numbers} of {result['folds_planned']}, not the next "
                         f"ones after the saved {done} of {planned}")
    recipe_of = [{key: value for key, value in run["hyperparameters"].items() if key != "fold"}
                 for run in before["runs"] + result["runs"]]
    if any(other != recipe_of[0] for other in recipe_of):
        raise SystemExit("the saved folds and the new ones were trained with different settings")
    if (before["seeds"], before.get("top")) != (result["seeds"], result["top"]):
        raise SystemExit("the saved folds were scored over other reference draws or another decision rule")
    joined = saved_folds + folds
    curves = [before["validation_eer_by_epoch"], result["validation_eer_by_epoch"]]
    length = min(len(curve) for curve in curves)
    weights = (done, len(folds))
    return joined, {
        **before, "prefix": [before["prefix"], result["prefix"]], "folds": len(joined),
        "writers": before["writers"] + result["writers"], "runs": before["runs"] + result["runs"],
        **{f"eer_skilled_{v}": fold_mean(joined, v) for v in VARIANTS},
        **{f"per_fold_{v}": before[f"per_fold_{v}"] + result[f"per_fold_{v}"] for v in VARIANTS},
        "validation_eer_by_epoch": [round((weights[0] * a + weights[1] * b) / sum(weights), 4)
                                    for a, b in zip(curves[0][:length], curves[1][:length])],
    }


def save_recipe(path: Path, folds: list[dict[str, dict]], result: dict) -> None:
    """Write a recipe's trials (per fold and variant: each trial's writer, label and score, in order)
    and its summary to one compressed ``.npz``."""
    arrays: dict[str, np.ndarray] = {"summary": np.array(json.dumps(result))}
    for i, fold in enumerate(folds):
        for variant in VARIANTS:
            trials = fold[variant]
            writers = sorted(trials)
            key = f"fold{i + 1}_{variant}"
            arrays[f"{key}_writers"] = np.repeat(writers, [len(trials[w][0]) for w in writers])
            arrays[f"{key}_labels"] = np.concatenate([trials[w][0] for w in writers]).astype(np.int8)
            arrays[f"{key}_scores"] = np.concatenate([trials[w][1] for w in writers]).astype(np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def load_recipe(path: Path) -> tuple[list[dict[str, dict]], dict]:
    """The trials and summary ``save_recipe`` wrote (the summary says which file they came from)."""
    if not path.is_file():
        raise SystemExit(f"{path} is missing")
    with np.load(path) as stored:
        result = json.loads(str(stored["summary"]))
        folds = []
        for i in range(1, result["folds"] + 1):
            fold = {}
            for variant in VARIANTS:
                writers, labels, scores = (stored[f"fold{i}_{variant}_{part}"]
                                           for part in ("writers", "labels", "scores"))
                fold[variant] = {str(w): (labels[writers == w].astype(int), scores[writers == w])
                                 for w in np.unique(writers)}
            folds.append(fold)
    return folds, {**result, "source": str(path)}


def epoch_curve(cards: list[dict]) -> list[float]:
    """Per epoch, the mean over folds of the validation skilled EER that training logged (the head as
    trained; each run's mean over its datasets), up to the shortest run's last epoch."""
    histories = [card["history"] for card in cards]
    length = min(len(history) for history in histories)
    return [float(np.mean([h[i]["validation_eer_skilled"] for h in histories])) for i in range(length)]


def fold_mean(folds: list[dict[str, dict]], variant: str, samples: list[list[str]] | None = None) -> float:
    """Mean over folds of the pooled EER of each fold's writers (or of the resampled ``samples``)."""
    return float(np.mean([pooled_eer(fold[variant], samples[i] if samples else sorted(fold[variant]))
                          for i, fold in enumerate(folds)]))


def summary(prefix: str, folds: list[dict[str, dict]], cards: list[dict], seeds: int,
            top: int | None = None) -> dict:
    """Per-fold and fold-mean EER of both variants and the epoch curve; what was scored (reference
    draws, how many best references the decision averaged) and each run's command, hyperparameters
    and writer split, so a saved file says what it is."""
    return {
        "prefix": prefix,
        "folds": len(folds),
        "folds_planned": cards[0]["hyperparameters"]["folds"],
        "writers": sum(len(fold["best"]) for fold in folds),
        "seeds": seeds,
        "top": head_config(cards[0], top).top_references,
        "runs": [{"command": card.get("command"), "hyperparameters": card["hyperparameters"], **split}
                 for card, split in zip(cards, fold_splits(cards))],
        **{f"eer_skilled_{v}": fold_mean(folds, v) for v in VARIANTS},
        **{f"per_fold_{v}": [pooled_eer(f[v], sorted(f[v])) for f in folds] for v in VARIANTS},
        "validation_eer_by_epoch": [round(x, 4) for x in epoch_curve(cards)],
    }


def _dataset(writer: str) -> str:
    """The dataset of a writer ID (``DATASET/WRITER``)."""
    return writer.split("/", 1)[0]


def dataset_folds(folds: list[dict[str, dict]], dataset: str) -> list[dict[str, dict]]:
    """The folds cut down to one dataset's writers (writer IDs are ``DATASET/WRITER``); a fold without
    any is left out."""
    cut = [{variant: {writer: trials for writer, trials in fold[variant].items()
                      if _dataset(writer) == dataset} for variant in VARIANTS} for fold in folds]
    return [fold for fold in cut if fold["last"]]


def datasets_of(folds: list[dict[str, dict]]) -> list[str]:
    """The datasets whose writers the folds hold, in name order."""
    return sorted({_dataset(writer) for fold in folds for writer in fold["last"]})


def per_dataset(folds: list[dict[str, dict]]) -> dict[str, dict[str, float]]:
    """Per dataset, the fold-mean EER of both variants on that dataset's writers alone."""
    return {dataset: {v: fold_mean(dataset_folds(folds, dataset), v) for v in VARIANTS}
            for dataset in datasets_of(folds)}


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
    parser.add_argument("prefix", help="runs/NAME of bench/crossval.sh, or a saved NAME.npz")
    parser.add_argument("other_prefix", nargs="?", help="a second recipe to compare with the first")
    parser.add_argument("--seeds", type=int, default=5, help="reference draws per writer")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--partial", action="store_true",
                        help="use the folds finished so far (fold 1 onwards) when some are missing")
    parser.add_argument("--save-dir", type=Path,
                        help="write each recipe scored from its runs to DIR/NAME.npz")
    parser.add_argument("--force", action="store_true", help="overwrite a saved NAME.npz")
    parser.add_argument("--continue", dest="continue_from", type=Path,
                        help="a NAME.npz saved with --partial: score the prefix's next folds only and "
                             "join them to it (a cross-validation run over two sessions)")
    parser.add_argument("--top", type=int, default=None,
                        help="score runs with the mean of the query's TOP best references (0: all K; "
                             "default: each run's head settings). A saved file without it in its "
                             "summary (all before 2026-12-03 12:20) holds scores of all K.")
    args = parser.parse_args()
    sources = [source for source in (args.prefix, args.other_prefix) if source]
    saved = {source: load_recipe(Path(source)) for source in sources if source.endswith(".npz")}
    earlier = load_recipe(args.continue_from) if args.continue_from else None
    if earlier and (len(sources) != 1 or sources[0] in saved):
        raise SystemExit("--continue takes one prefix of fold runs")
    after = earlier[1]["folds"] if earlier else 0
    pending = {source: fold_cards(source, args.partial, after + 1) for source in sources
               if source not in saved}
    # everything that can refuse does so before the (minutes of) scoring
    described = [(fold_splits_of_summary(saved[s][1]), saved[s][1]["seeds"], saved[s][1].get("top"))
                 if s in saved else
                 (fold_splits(pending[s][1]), args.seeds,
                  head_config(pending[s][1][0], args.top).top_references)
                 for s in sources]  # (writer splits, reference draws, best references averaged or None)
    if len(described) == 2 and described[0][0] != described[1][0]:
        raise SystemExit("the two recipes were not cross-validated on the same folds "
                         "(their writer splits differ)")
    if len(described) == 2 and described[0][1] != described[1][1]:
        raise SystemExit(f"the two recipes were scored over different reference draws "
                         f"({described[0][1]} and {described[1][1]}): use --seeds to match")
    if len(described) == 2 and None not in (described[0][2], described[1][2]) \
            and described[0][2] != described[1][2]:
        raise SystemExit(f"the two recipes were scored with different decision rules (the mean of the "
                         f"{described[0][2]} and of the {described[1][2]} best references; 0: all): "
                         f"use --top to match")
    targets = {source: args.save_dir / f"{Path(source).name}.npz"
               for source in pending} if args.save_dir else {}
    for target in targets.values():
        if target.exists() and not args.force and target != args.continue_from:
            raise SystemExit(f"{target} exists: it may hold another recipe (--force overwrites it)")
    recipes = []
    for source in sources:
        if source in saved:
            recipes.append(saved[source])
            continue
        runs, cards = pending[source]
        folds = fold_trials(runs, cards, args.seeds, args.top)
        result = summary(source, folds, cards, args.seeds, args.top)
        if earlier:
            folds, result = continued(earlier, folds, result)
        if source in targets:
            save_recipe(targets[source], folds, result)
        recipes.append((folds, result))
    (folds_a, summary_a), *other = recipes
    result = {"a": summary_a,
              "a_last_minus_best": compare(folds_a, folds_a, "best", args.rounds, variant_b="last")}
    result["a_per_dataset"] = per_dataset(folds_a)
    if other:
        folds_b, result["b"] = other[0]
        result["b_minus_a"] = {v: compare(folds_a, folds_b, v, args.rounds) for v in VARIANTS}
        result["b_per_dataset"] = per_dataset(folds_b)
        result["b_minus_a_per_dataset"] = {  # last epochs, each dataset's writers resampled alone
            dataset: compare(dataset_folds(folds_a, dataset), dataset_folds(folds_b, dataset), "last",
                             args.rounds) for dataset in datasets_of(folds_a)}
    for part in ("a", "b"):  # the per-run details are in the saved file, not on screen
        if part in result:
            result[part] = {key: value for key, value in result[part].items() if key != "runs"}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
