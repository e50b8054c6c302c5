"""How far a threshold calibrated on two datasets carries to a third, per normalisation strength.

A bank that runs the shipped threshold on its own scanner's signatures meets the case of leave one
dataset out: the threshold was set on other data. For each run of ``bench/lodo.sh``
(``PREFIX-DATASET``, trained without DATASET), this sets the threshold at the skilled-forgery EER
point of the run's validation writers (what ``sigverify calibrate`` does; 5 reference draws here), then
scores every writer of the held-out dataset: its own skilled EER (the best any threshold could do),
and FAR / FRR / HTER (their mean) at the carried threshold. It does so for each strength of the
per-customer score normalisation (the card's centre and ``top`` kept): the normalisation measures a
customer's scores against how well their references agree with each other, which could carry over
to a new scanner better than one global threshold.

Against it, the calibration a bank can do itself without forgeries (``own_genuine``, ``sigverify
calibrate --target-frr``): half of the held-out writers' genuine signatures set the threshold at
``--target-frr``, the other half's trials measure FAR / FRR, and the other way round.

    python -m bench.lodo_transfer PREFIX [--strengths 0 0.5 1 1.5] [--seeds 5] [--target-frr 0.05]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.compare_models import DATASETS, NAMES, WriterTrials, embed_writer_set, pooled, writer_trials


def carried(calibration: WriterTrials, held_out: WriterTrials) -> dict[str, float]:
    """The threshold at the EER point of ``calibration``, and the held-out trials' own EER and their
    FAR (skilled) / FRR / HTER at that threshold."""
    from siamese.metrics import equal_error_rate, far_frr

    _eer, threshold = equal_error_rate(*pooled(calibration))
    labels, scores = pooled(held_out)
    eer, _own = equal_error_rate(labels, scores)
    if threshold is None or eer is None:
        raise ValueError("both sides need genuine signatures and skilled forgeries")
    far, frr = far_frr(labels, scores, threshold)
    assert far is not None and frr is not None
    return {"threshold": float(threshold), "eer_skilled": float(eer), "far_skilled": float(far),
            "frr": float(frr), "hter": float((far + frr) / 2)}


def own_genuine(held_out: WriterTrials, target_frr: float, seed: int = 0) -> dict[str, float]:
    """A bank's own calibration without forgeries: the held-out writers cut in two halves at random;
    the threshold at ``target_frr`` on one half's genuine trials, FAR (skilled) / FRR measured on the
    other half; both ways round, averaged."""
    from siamese.metrics import far_frr, threshold_at_frr

    writers = sorted(held_out)
    shuffled = [writers[i] for i in np.random.default_rng(seed).permutation(len(writers))]
    halves = [shuffled[: len(writers) // 2], shuffled[len(writers) // 2 :]]
    found = []
    for calibrate_on, measure_on in (halves, halves[::-1]):
        threshold = threshold_at_frr(*pooled(held_out, calibrate_on), target_frr)
        found.append(far_frr(*pooled(held_out, measure_on), threshold))
    far, frr = (float(np.mean([pair[i] for pair in found])) for i in (0, 1))
    return {"target_frr": target_frr, "far_skilled": far, "frr": frr}


def transfer_rows(prefix: str, strengths: list[float], seeds: int, target_frr: float) -> dict[str, Any]:
    """Per held-out dataset and strength: ``carried`` of the run's validation writers to all of its
    writers; then the mean over the held-out datasets per strength."""
    from dataclasses import replace

    from siamese.datasets import load_dataset
    from siamese.model import SignatureModel

    held_out: dict[str, dict[str, Any]] = {}
    for name in NAMES:
        model = SignatureModel.load(Path(f"{prefix}-{name}") / "model.keras")
        card_rule = model.normalisation
        validation = sorted(model.card["split"]["validation"])
        writers = sorted({record.writer for record in load_dataset(DATASETS / name)})
        embedded = embed_writer_set(model, validation), embed_writer_set(model, writers)
        rows = {}
        for strength in strengths:
            model.normalisation = replace(card_rule, strength=strength)
            trials = writer_trials(model, writers, seeds, embedded[1])
            rows[f"{strength:g}"] = carried(writer_trials(model, validation, seeds, embedded[0]), trials)
            rows[f"{strength:g}"]["own_genuine"] = own_genuine(trials, target_frr)
        held_out[name] = rows
    means = {key: {field: float(np.mean([held_out[name][key][field] for name in held_out]))
                   for field in ("eer_skilled", "far_skilled", "frr", "hter")}
             for key in held_out[NAMES[0]]}
    for key, row in means.items():
        row["own_genuine"] = {
            field: float(np.mean([held_out[name][key]["own_genuine"][field] for name in held_out]))
            for field in ("far_skilled", "frr")}
    return {"prefix": prefix, "reference_draws": seeds, "held_out": held_out, "mean_over_held_out": means}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix")
    parser.add_argument("--strengths", nargs="+", type=float, default=[0.0, 0.5, 1.0, 1.5])
    parser.add_argument("--seeds", type=int, default=5, help="reference draws per writer")
    parser.add_argument("--target-frr", type=float, default=0.05,
                        help="FRR the held-out half's genuine-only calibration aims at")
    args = parser.parse_args()
    print(json.dumps(transfer_rows(args.prefix, args.strengths, args.seeds, args.target_frr), indent=1))


if __name__ == "__main__":
    main()
