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

    python -m bench.lodo_transfer PREFIX [--strengths 0 0.5 1 1.5] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.compare_models import DATASETS, NAMES, WriterTrials, embed_writer_set, writer_trials


def pooled(trials: WriterTrials) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of all writers' trials together, in writer order."""
    writers = sorted(trials)
    return (np.concatenate([trials[w][0] for w in writers]), np.concatenate([trials[w][1] for w in writers]))


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


def transfer_rows(prefix: str, strengths: list[float], seeds: int) -> dict[str, Any]:
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
            rows[f"{strength:g}"] = carried(writer_trials(model, validation, seeds, embedded[0]),
                                            writer_trials(model, writers, seeds, embedded[1]))
        held_out[name] = rows
    means = {key: {field: float(np.mean([held_out[name][key][field] for name in held_out]))
                   for field in ("eer_skilled", "far_skilled", "frr", "hter")}
             for key in held_out[NAMES[0]]}
    return {"prefix": prefix, "reference_draws": seeds, "held_out": held_out, "mean_over_held_out": means}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix")
    parser.add_argument("--strengths", nargs="+", type=float, default=[0.0, 0.5, 1.0, 1.5])
    parser.add_argument("--seeds", type=int, default=5, help="reference draws per writer")
    args = parser.parse_args()
    print(json.dumps(transfer_rows(args.prefix, args.strengths, args.seeds), indent=1))


if __name__ == "__main__":
    main()
