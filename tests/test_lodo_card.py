"""Leave-one-dataset-out results gathered into the model card and printed by ``sigverify model-card``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.lodo_card import store
from siamese.card import render_card_markdown


def _run(prefix: Path, held: str, trained_on: list[str], eer: float | None) -> None:
    """A finished run of bench/lodo.sh (``eer`` None: the training finished, the evaluation did not)."""
    folder = prefix.parent / f"{prefix.name}-{held}"
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps(
        {"datasets": {name: 100 for name in trained_on}, "command": f"sigverify train (without {held})"}))
    if eer is not None:
        (folder / "heldout.json").write_text(json.dumps(
            {"writers": 55, "queries": 3465, "eer_skilled": eer, "eer_random": 0.0345, "auc": 0.9187,
             "far": 0.5098, "frr": 0.023, "threshold": 0.7, "model_version": "x"}))


def test_the_held_out_results_are_stored_in_the_card_and_printed(tmp_path: Path):
    prefix = tmp_path / "runs" / "lodo"
    _run(prefix, "cedar", ["bhsig260-bengali", "bhsig260-hindi"], 0.1577)
    _run(prefix, "bhsig260-hindi", ["bhsig260-bengali", "cedar"], 0.0925)
    _run(prefix, "bhsig260-bengali", ["bhsig260-hindi", "cedar"], None)  # interrupted: left out
    _run(prefix, "seed7-cedar", ["bhsig260-bengali", "bhsig260-hindi"], 0.1552)  # another recipe's run
    card_path = tmp_path / "model.json"
    card_path.write_text(json.dumps({"name": "m", "threshold": 0.65, "test": {},
                                     "datasets": {"cedar": 1, "bhsig260-bengali": 1, "bhsig260-hindi": 1}}))
    store(card_path, prefix, "make lodo")
    card = json.loads(card_path.read_text())
    results = card["leave_one_dataset_out"]["results"]
    assert sorted(results) == ["bhsig260-hindi", "cedar"]
    assert results["cedar"]["trained_on"] == ["bhsig260-bengali", "bhsig260-hindi"]
    assert results["cedar"]["eer_skilled"] == 0.1577 and "model_version" not in results["cedar"]
    assert card["threshold"] == 0.65  # the rest of the card is kept
    markdown = render_card_markdown(card)
    assert "Leave one dataset out (`make lodo`" in markdown
    assert ("| cedar | bhsig260-bengali + bhsig260-hindi | 55 | 3465 | 15.77% | 3.45% | 0.9187 | "
            "50.98% / 2.30% |") in markdown


def test_no_finished_run_is_an_error_and_the_card_is_untouched(tmp_path: Path):
    card_path = tmp_path / "model.json"
    card_path.write_text('{"name": "m", "datasets": {"cedar": 1}}')
    with pytest.raises(SystemExit, match="no finished leave-one-dataset-out run in .*lodo-DATASET for cedar"):
        store(card_path, tmp_path / "runs" / "lodo", "make lodo")
    assert card_path.read_text() == '{"name": "m", "datasets": {"cedar": 1}}'
