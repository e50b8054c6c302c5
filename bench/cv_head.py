"""The head refit's settings judged by cross-validation: regularisation and normalisation strength.

``sigverify train`` refits the head on the training writers with ``HeadFitConfig`` (logistic
regression strength ``C`` and the per-customer normalisation ``strength``). The shipped values were
chosen on 32 validation writers. This takes the fold runs of ``bench/crossval.sh`` (one epoch of
each, ``--epoch best|last``), embeds each run's training and validation writers once, then for every
setting in the grid refits the head on the training writers and scores the fold's validation writers
with the service's rule over several reference draws, exactly as ``bench.crossval`` does for the
card's setting. It reports each setting's fold-mean skilled EER and its difference from the card's
setting, with the paired bootstrap of ``bench.crossval`` (writers resampled within folds).

The lowest of a dozen settings, picked and reported on the same writers, is flattered, and the
intervals are not widened for the number of settings tried: a setting that is better only by a hair
is noise.

    python -m bench.cv_head PREFIX [--epoch last] [--regularisation 0.01 0.1 1] [--strength 0 0.25 0.5 0.75 1]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from bench.compare_models import embed_writer_set, writer_trials
from bench.crossval import compare, fold_cards, fold_mean, training_writers


def setting_trials(run: Path, card: dict, epoch: str, settings: list[tuple[float, float]],
                   seeds: int) -> dict[tuple[float, float], dict]:
    """Per (regularisation, strength): the fold's validation writers' trials with the head so refitted."""
    from siamese.head_fit import HeadFitConfig
    from siamese.model import SignatureModel
    from siamese.training import embed_writers, fit_head_on_training_writers

    model = SignatureModel.load(run / "work" / f"{epoch}.keras")
    data = training_writers(card)
    training = embed_writers(model, data, data.split["train"])
    writers = sorted(card["split"]["validation"])
    validation = embed_writer_set(model, writers)
    base = HeadFitConfig(**card["hyperparameters"]["head"])
    found = {}
    for regularisation, strength in settings:
        config = replace(base, regularisation=regularisation, normalisation_strength=strength)
        fit_head_on_training_writers(model, data, config, training)
        found[(regularisation, strength)] = writer_trials(model, writers, seeds, validation)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix")
    parser.add_argument("--epoch", choices=("best", "last"), default="last")
    parser.add_argument("--regularisation", type=float, nargs="+", default=[0.01, 0.1, 1.0],
                        help="logistic regression C values (smaller is stronger)")
    parser.add_argument("--strength", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0],
                        help="normalisation strengths")
    parser.add_argument("--seeds", type=int, default=5, help="reference draws per writer")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args()
    runs, cards = fold_cards(args.prefix, partial=False)
    head = cards[0]["hyperparameters"]["head"]
    if any(card["hyperparameters"]["head"] != head for card in cards):
        raise SystemExit("the fold runs refitted their heads differently: not one recipe")
    card_setting = (head["regularisation"], head["normalisation_strength"])
    settings = sorted({card_setting} | {(c, s) for c in args.regularisation for s in args.strength})
    per_fold = [setting_trials(run, card, args.epoch, settings, args.seeds) for run, card in zip(runs, cards)]

    def folds_of(setting):
        return [{"best": fold[setting]} for fold in per_fold]  # the variant name compare() expects

    rows = []
    for setting in settings:
        row = {"regularisation": setting[0], "strength": setting[1],
               "eer_skilled": fold_mean(folds_of(setting), "best")}
        if setting != card_setting:
            row["minus_card_setting"] = compare(folds_of(card_setting), folds_of(setting), "best",
                                                args.rounds)
        rows.append(row)
    print(json.dumps({"prefix": args.prefix, "epoch": args.epoch, "folds": len(runs),
                      "card_setting": {"regularisation": card_setting[0], "strength": card_setting[1]},
                      "settings": sorted(rows, key=lambda r: r["eer_skilled"])}, indent=1))


if __name__ == "__main__":
    main()
