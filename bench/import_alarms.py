"""False alarms of enrollment when whole datasets are imported (needs ../shared/datasets).

``sigverify import`` of CEDAR, then BHSig260 Bengali, then Hindi (5 references per writer, every
writer a different person) into an empty database with the shipped model. Each writer's references are
checked against every customer enrolled before it (``matches_other_customer``) and against each other
(``inconsistent_reference``), so every warning here is a false alarm. The import runs once with both
checks at their lowest level and nothing blocking; a writer counts as flagged at a level when one of
its warnings' scores is at or above it (1:N) or below it (consistency).

In a real import a writer blocked at a level is not enrolled, so it cannot flag later writers; this
run enrolls everyone, so it can only count more alarms than such an import would.

    python -m bench.import_alarms [--levels 0.65 0.8 0.9 0.95] [--consistency-levels 0.2 0.3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.compare_models import dataset_dirs

CROSS_MATCH = "matches_other_customer"
INCONSISTENT = "inconsistent_reference"


def flagged_counts(warnings: list[dict[str, Any]], customers: dict[str, str], levels: list[float],
                   consistency_levels: list[float]) -> dict[str, dict[str, Any]]:
    """Per dataset (``customers``: customer ID -> dataset): writers flagged at each level, and the
    cross-match pairs at the highest level."""
    best: dict[str, float] = {}
    worst: dict[str, float] = {}
    pairs: dict[str, tuple[float, str]] = {}
    for warning in warnings:
        customer, score = warning["customer_id"], float(warning["score"])
        if warning["code"] == CROSS_MATCH and score > best.get(customer, -1.0):
            best[customer] = score
            pairs[customer] = (score, str(warning["other_customer_id"]))
        elif warning["code"] == INCONSISTENT:
            worst[customer] = min(score, worst.get(customer, 2.0))
    by_dataset: dict[str, list[str]] = defaultdict(list)
    for customer, dataset in customers.items():
        by_dataset[dataset].append(customer)
    results: dict[str, dict[str, Any]] = {}
    for dataset, members in by_dataset.items():
        row: dict[str, Any] = {"writers": len(members)}
        for level in levels:
            row[f"writers_flagged_1n_at_{level}"] = sum(best.get(c, -1.0) >= level for c in members)
        for level in consistency_levels:
            row[f"writers_flagged_inconsistent_below_{level}"] = sum(worst.get(c, 2.0) < level
                                                                     for c in members)
        top = max(levels)
        row[f"pairs_at_{top}"] = sorted(f"{c} ~ {pairs[c][1]} ({pairs[c][0]:.3f})" for c in members
                                        if best.get(c, -1.0) >= top)
        results[dataset] = row
    return results


def run(levels: list[float], consistency_levels: list[float], references: int = 5) -> dict[str, Any]:
    """Import the datasets into a temporary database and count the writers flagged at each level."""
    from enroll.bulk import customer_id_for, import_dataset, writers_to_import
    from siamese.model import SignatureModel
    from store.cli import open_checked_store
    from store.settings import Settings

    model = SignatureModel.load()
    warnings: list[dict[str, Any]] = []
    customers: dict[str, str] = {}
    seconds = 0.0
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), enroll_cross_match_threshold=min(levels),
                            enroll_consistency_threshold=max(consistency_levels), enroll_blocking_warnings="")
        with open_checked_store(settings, model.version) as store:
            for root in dataset_dirs():
                customers.update({customer_id_for("", writer): root.name
                                  for writer in writers_to_import(root, None, references)})
                report = import_dataset(store, model, root, references=references, progress=False)
                if report.failed:
                    raise SystemExit(f"{root.name}: writers failed: {report.failed[:3]}")
                warnings += report.to_dict()["warnings"]
                seconds += report.seconds
    return {"model_version": model.version, "threshold": model.threshold, "references": references,
            "import_seconds": round(seconds, 1),
            "datasets": flagged_counts(warnings, customers, levels, consistency_levels)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=float, nargs="+", default=[0.65, 0.8, 0.9, 0.95])
    parser.add_argument("--consistency-levels", type=float, nargs="+", default=[0.2, 0.3])
    parser.add_argument("--references", type=int, default=5)
    options = parser.parse_args()
    print(json.dumps(run(options.levels, options.consistency_levels, options.references), indent=1))
