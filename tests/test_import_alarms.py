"""bench.import_alarms: counting false alarms of a whole-dataset import."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import import_alarms
from tests.synthetic import write_bhsig_layout, write_cedar_layout


def warning(customer: str, code: str, score: float, other: str = "") -> dict[str, object]:
    return {"customer_id": customer, "code": code, "score": score, "other_customer_id": other}


def test_flagged_counts_take_each_writers_worst_warning():
    customers = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "b3": "B"}
    warnings = [
        warning("a2", import_alarms.CROSS_MATCH, 0.7, "a1"),
        warning("b1", import_alarms.CROSS_MATCH, 0.85, "a1"),
        warning("b1", import_alarms.CROSS_MATCH, 0.95, "a2"),  # the highest of b1's counts
        warning("b2", import_alarms.INCONSISTENT, 0.25),
        warning("b2", import_alarms.INCONSISTENT, 0.1),
        warning("b3", import_alarms.INCONSISTENT, 0.3),  # not below 0.3
    ]
    counts = import_alarms.flagged_counts(warnings, customers, [0.65, 0.9], [0.2, 0.3])
    assert counts["A"] == {"writers": 2, "writers_flagged_1n_at_0.65": 1, "writers_flagged_1n_at_0.9": 0,
                           "writers_flagged_inconsistent_below_0.2": 0,
                           "writers_flagged_inconsistent_below_0.3": 0, "pairs_at_0.9": []}
    assert counts["B"]["writers_flagged_1n_at_0.65"] == 1 and counts["B"]["writers_flagged_1n_at_0.9"] == 1
    assert counts["B"]["writers_flagged_inconsistent_below_0.2"] == 1
    assert counts["B"]["writers_flagged_inconsistent_below_0.3"] == 1
    assert counts["B"]["pairs_at_0.9"] == ["b1 ~ a2 (0.950)"]


def test_run_imports_every_dataset_with_the_shipped_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    roots = [write_cedar_layout(tmp_path / "cedar", writers=3, genuine=3, forgeries=0),
             write_bhsig_layout(tmp_path / "bengali", writers=2, genuine=3, forgeries=0)]
    monkeypatch.setattr(import_alarms, "dataset_dirs", lambda: roots)
    result = import_alarms.run([0.0, 1.01], [0.2], references=3)
    cedar, bengali = result["datasets"]["cedar"], result["datasets"]["bengali"]
    assert (cedar["writers"], bengali["writers"]) == (3, 2)
    # at 0 every writer after the first matches someone; nothing reaches a score above 1
    assert (cedar["writers_flagged_1n_at_0.0"], bengali["writers_flagged_1n_at_0.0"]) == (2, 2)
    assert cedar["writers_flagged_1n_at_1.01"] == bengali["writers_flagged_1n_at_1.01"] == 0
