"""Store the leave-one-dataset-out results of ``bench/lodo.sh`` in a model card.

``bench/lodo.sh`` leaves ``PREFIX-DATASET/heldout.json`` (the evaluation of every writer of the
held-out dataset) and ``PREFIX-DATASET/model.json`` (the card of the model trained without it). This
gathers them into the card's ``leave_one_dataset_out`` block, which ``sigverify model-card`` prints.
``make lodo`` runs it for the shipped model; by hand:

    python -m bench.lodo_card runs/lodo siamese/weights/siamese_signature.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

KEPT = ("writers", "queries", "eer_skilled", "eer_random", "auc", "far", "frr", "threshold")


def collect(prefix: Path, datasets: list[str]) -> dict[str, Any]:
    """The results in ``PREFIX-DATASET`` of each of ``datasets`` held out, with what it trained on.

    Only those folders: runs of other recipes beside them (``PREFIX-seed7-DATASET``) are not taken.
    """
    results: dict[str, Any] = {}
    for held in sorted(datasets):
        folder = prefix.parent / f"{prefix.name}-{held}"
        heldout, card = folder / "heldout.json", folder / "model.json"
        if not (heldout.is_file() and card.is_file()):
            continue
        evaluation = json.loads(heldout.read_text())
        trained = json.loads(card.read_text())
        results[held] = {
            **{key: evaluation.get(key) for key in KEPT},
            "trained_on": sorted(trained.get("datasets", {})),
            "train_command": trained.get("command", ""),
        }
    if not results:
        raise SystemExit(f"no finished leave-one-dataset-out run in {prefix}-DATASET for "
                         f"{', '.join(sorted(datasets)) or 'the card (it lists no datasets)'}")
    return results


def store(card_path: Path, prefix: Path, command: str) -> dict[str, Any]:
    """Write the ``leave_one_dataset_out`` block into the card at ``card_path``; returns it.

    The held-out datasets are the card's own (its ``datasets``).
    """
    card = json.loads(card_path.read_text())
    results = collect(prefix, list(card.get("datasets", {})))
    block = {
        "protocol": "train on the other datasets (their own writer split, head refitted, threshold "
                    "calibrated on their validation writers), evaluate every writer of the held-out one",
        "command": command,
        "results": results,
    }
    card["leave_one_dataset_out"] = block
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    return block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", type=Path, help="the runs' prefix, e.g. runs/lodo")
    parser.add_argument("card", type=Path, help="the model card (.json) to store them in")
    parser.add_argument("--command", default="make lodo", help="the command that made the runs")
    args = parser.parse_args()
    block = store(args.card, args.prefix, args.command)
    print(f"{args.card}: leave one dataset out, held out {', '.join(block['results'])}")


if __name__ == "__main__":
    main()
