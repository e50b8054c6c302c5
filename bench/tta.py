"""Test-time views (``siamese.views``): does averaging over redrawn canvases separate forgeries better?

Each canvas is embedded as it is and redrawn at other sizes about its centre (``--zooms``); the
vectors are averaged and made unit length again, for references and queries alike (what a model
card's ``test_time_zooms`` makes the service do). Same models, same trials (the ``sigverify
evaluate`` protocol, 5 reference draws), the head and rule of each model's card unchanged: only the
embeddings differ, so the comparison is paired. The skilled EER does not depend on the threshold or
on the normalisation's centre (a constant shift of every score).

    python -m bench.tta --lodo PREFIX            # every writer of each run's held-out dataset
    python -m bench.tta --model M.keras          # the model's validation writers

``--baseline-zooms`` compares two sets of views instead of views against none (the card's own
zooms are ignored: both sides are set here). Results name the sides ``baseline`` and ``candidate``
(files kept before 2026-12-05 call them ``plain`` and ``averaged``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.compare_models import NAMES, paired_difference, writer_trials

DEFAULT_ZOOMS = (0.9, 1.1)


def paired(model: Any, writers: list[str], zooms: tuple[float, ...], seeds: int,
           rounds: int, baseline: tuple[float, ...] = ()) -> dict[str, Any]:
    """Skilled EER of the embeddings averaged over the ``baseline`` zooms (none: the canvas alone)
    and over ``zooms`` on the same trials, the difference (candidate - baseline) and its 95%
    bootstrap interval over writers."""
    model.zooms = baseline
    before = writer_trials(model, writers, seeds)
    model.zooms = zooms
    after = writer_trials(model, writers, seeds)
    found = paired_difference(before, after, rounds)
    return {"writers": found["writers"], "eer_skilled_baseline": found["eer_a"],
            "eer_skilled_candidate": found["eer_b"], "difference": found["difference"],
            "interval_95": found["interval_95"]}


def main() -> None:
    from bench.compare_models import DATASETS
    from siamese.datasets import load_dataset
    from siamese.model import SignatureModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--lodo", help="prefix of bench/lodo.sh runs (PREFIX-DATASET/model.keras)")
    source.add_argument("--model", type=Path, help="a model with a card: its validation writers")
    parser.add_argument("--zooms", type=float, nargs="+", default=list(DEFAULT_ZOOMS))
    parser.add_argument("--baseline-zooms", type=float, nargs="*", default=[],
                        help="the views compared against (default none: the canvas alone)")
    parser.add_argument("--seeds", type=int, default=5, help="reference draws per writer")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--runtime", default="tensorflow", help="what embeds (siamese.litert.RUNTIMES)")
    args = parser.parse_args()
    zooms, baseline = tuple(args.zooms), tuple(args.baseline_zooms)
    results: dict[str, Any] = {"zooms": list(zooms), "baseline_zooms": list(baseline),
                               "reference_draws": args.seeds}
    if args.model:
        model = SignatureModel.load(args.model, runtime=args.runtime)
        results["validation"] = paired(model, sorted(model.card["split"]["validation"]), zooms, args.seeds,
                                       args.rounds, baseline)
    else:
        for name in NAMES:
            model = SignatureModel.load(Path(f"{args.lodo}-{name}") / "model.keras", runtime=args.runtime)
            writers = sorted({record.writer for record in load_dataset(DATASETS / name)})
            results[name] = paired(model, writers, zooms, args.seeds, args.rounds, baseline)
            print(name, json.dumps(results[name]), flush=True)
        for key in ("eer_skilled_baseline", "eer_skilled_candidate", "difference"):
            results[f"mean_{key}"] = float(np.mean([results[name][key] for name in NAMES]))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
