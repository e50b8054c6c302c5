"""The command line: every store-backed command, exit statuses, JSON output, index repair at start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from store.settings import Settings
from tests.conftest import write_signature
from tests.synthetic import write_cedar_layout
from webapp.cli import main

QUIET_POLICY = {"SIGVERIFY_ENROLL_BLOCKING_WARNINGS": ""}


@pytest.fixture
def sigverify(settings: Settings, model):  # type: ignore[no-untyped-def]
    """Run ``sigverify ARGS`` in process against the test's data dir, database and model."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        options = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url,
                   "--model", str(settings.model_path)]
        return runner.invoke(main, [*options, *args], env={**QUIET_POLICY, **(env or {})},
                             catch_exceptions=False)

    return run


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "images"
    return {
        "a0": write_signature(folder, 1, 0), "a1": write_signature(folder, 1, 1),
        "a2": write_signature(folder, 1, 2), "b0": write_signature(folder, 2, 0),
        "query": write_signature(folder, 1, 7),
    }


def test_db_upgrade_then_enroll_list_show(sigverify, images):
    assert sigverify("db", "upgrade").exit_code == 0
    result = sigverify("enroll", "alice", str(images["a0"]), str(images["a1"]), "--name", "Alice A")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("created alice: references 1, 2")
    assert sigverify("enroll", "bob", str(images["b0"])).exit_code == 0
    listed = sigverify("customers", "list")
    assert listed.stdout.splitlines() == ["alice\t2\tactive\t-\tAlice A", "bob\t1\tactive\t-\t"]
    shown = json.loads(sigverify("customers", "show", "alice", "--json").stdout)
    assert shown["customer_id"] == "alice" and len(shown["references"]) == 2


def test_verify_exit_status_follows_the_decision(sigverify, images):
    sigverify("enroll", "alice", str(images["a0"]), str(images["a1"]))
    match = sigverify("verify", "alice", str(images["query"]), "--json", env={"SIGVERIFY_THRESHOLD": "0"})
    assert match.exit_code == 0
    data = json.loads(match.stdout)
    assert data["match"] is True and data["threshold"] == 0.0 and len(data["reference_scores"]) == 2
    assert {"score", "best_reference_id", "model_version"} <= set(data)
    no_match = sigverify("verify", "alice", str(images["query"]), env={"SIGVERIFY_THRESHOLD": "1"})
    assert no_match.exit_code == 1 and no_match.stdout.startswith("no match")


@pytest.mark.parametrize("case", ["unknown", "deleted", "undecodable", "invalid_id"])
def test_verify_errors_exit_2(sigverify, images, tmp_path: Path, case: str):
    sigverify("enroll", "alice", str(images["a0"]))
    image = images["query"]
    customer = {"unknown": "nobody", "invalid_id": "a/b"}.get(case, "alice")
    if case == "deleted":
        assert sigverify("customers", "delete", "alice", "--yes").exit_code == 0
    if case == "undecodable":
        image = tmp_path / "notes.txt"
        image.write_text("not a signature")
    result = sigverify("verify", customer, str(image))
    assert result.exit_code == 2
    expected = {"unknown": "customer_not_found", "deleted": "customer_not_found",
                "undecodable": "undecodable_image", "invalid_id": "invalid_customer_id"}[case]
    assert f"error: {expected}:" in result.stderr


def test_customers_show_and_delete_of_unknown_id_exit_2(sigverify):
    assert sigverify("customers", "show", "ghost").exit_code == 2
    assert sigverify("customers", "delete", "ghost", "--yes").exit_code == 2


def test_enroll_bad_input_exits_2_and_stores_nothing(sigverify, images, tmp_path: Path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    result = sigverify("enroll", "carol", str(images["a0"]), str(empty))
    assert result.exit_code == 2 and "undecodable_image" in result.stderr
    assert sigverify("customers", "list").stdout == ""


def test_compare_identify_reindex(sigverify, images):
    compared = sigverify("compare", str(images["a0"]), str(images["a1"]), "--json",
                         env={"SIGVERIFY_THRESHOLD": "0"})
    assert compared.exit_code == 0 and 0.0 <= json.loads(compared.stdout)["score"] <= 1.0
    sigverify("enroll", "alice", str(images["a0"]), str(images["a1"]))
    sigverify("enroll", "bob", str(images["b0"]))
    found = json.loads(sigverify("identify", str(images["query"]), "--top", "2", "--json").stdout)
    assert {c["customer_id"] for c in found} == {"alice", "bob"}
    reindexed = sigverify("reindex", "--quiet")
    assert reindexed.exit_code == 0 and "re-embedded 0 references" in reindexed.stdout


def test_damaged_index_is_rebuilt_at_start_and_by_index_commands(sigverify, images, settings: Settings):
    sigverify("enroll", "alice", str(images["a0"]), str(images["a1"]))
    settings.index_path.write_bytes(b"garbage" * 100)
    result = sigverify("verify", "alice", str(images["query"]), env={"SIGVERIFY_THRESHOLD": "0"})
    assert result.exit_code == 0 and "index rebuilt" in result.stderr
    assert "index loaded: 2 references" in sigverify("index", "check").stdout
    settings.index_path.unlink()
    assert "index rebuilt: 2 references" in sigverify("index", "check").stdout
    assert "index rebuilt: 2 references" in sigverify("index", "rebuild").stdout


def test_import_is_idempotent(sigverify, tmp_path: Path):
    root = write_cedar_layout(tmp_path / "cedar", writers=3, genuine=4, forgeries=1)
    first = sigverify("import", str(root), "--layout", "cedar", "--references", "2", "--quiet", "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["writers"], report["enrolled"], report["signatures"]) == (3, 3, 6)
    second = json.loads(sigverify("import", str(root), "--references", "2", "--quiet", "--json").stdout)
    assert (second["enrolled"], second["skipped"], second["signatures"]) == (0, 3, 0)
    assert len(sigverify("customers", "list").stdout.splitlines()) == 3


def test_import_reports_warnings_of_enrolled_writers(sigverify, tmp_path: Path):
    root = write_cedar_layout(tmp_path / "cedar", writers=3, genuine=2, forgeries=0)
    every_match = {"SIGVERIFY_ENROLL_CROSS_MATCH_THRESHOLD": "0",
                   "SIGVERIFY_ENROLL_CONSISTENCY_THRESHOLD": "0"}
    result = sigverify("import", str(root), "--references", "2", "--quiet", "--json", env=every_match)
    report = json.loads(result.stdout)
    assert report["enrolled"] == 3 and report["failed"] == []
    # writer 2 matches writer 1, writer 3 matches both: one warning per (image, other customer)
    matched = [(w["customer_id"], w["other_customer_id"]) for w in report["warnings"]]
    assert len(matched) == 2 * 1 + 2 * 2 and {c for c, _ in matched} == {"cedar-cedar_2", "cedar-cedar_3"}
    assert all(w["code"] == "matches_other_customer" and 0 <= w["score"] <= 1 for w in report["warnings"])
    assert ("cedar-cedar_3", "cedar-cedar_1") in matched and ("cedar-cedar_3", "cedar-cedar_2") in matched


def test_import_text_lists_warnings_and_blocked_writers(sigverify, tmp_path: Path):
    root = write_cedar_layout(tmp_path / "cedar", writers=2, genuine=2, forgeries=0)
    blocking = {"SIGVERIFY_ENROLL_CROSS_MATCH_THRESHOLD": "0",
                "SIGVERIFY_ENROLL_BLOCKING_WARNINGS": "matches_other_customer"}
    blocked = sigverify("import", str(root), "--references", "2", "--quiet", env=blocking)
    assert "2 enrolled" not in blocked.stdout and "1 failed, 0 warnings" in blocked.stdout
    assert "failed cedar-cedar_2: enrollment_rejected" in blocked.stderr
    warned = sigverify("import", str(root), "--references", "2", "--quiet",
                       env={**blocking, "SIGVERIFY_ENROLL_BLOCKING_WARNINGS": ""})
    assert "1 enrolled, 1 already there, 0 failed, 2 warnings" in warned.stdout
    assert warned.stderr.count("warning cedar-cedar_2: matches_other_customer: ") == 2


def test_customer_threshold_decides(sigverify, images):
    sigverify("enroll", "alice", str(images["a0"]), str(images["a1"]))
    assert sigverify("customers", "threshold", "alice", "1").exit_code == 0
    assert sigverify("verify", "alice", str(images["query"]), env={"SIGVERIFY_THRESHOLD": "0"}).exit_code == 1
    assert sigverify("customers", "threshold", "alice", "0").exit_code == 0
    assert sigverify("verify", "alice", str(images["query"]), env={"SIGVERIFY_THRESHOLD": "1"}).exit_code == 0
    assert sigverify("customers", "threshold", "alice", "--clear").exit_code == 0
    assert sigverify("verify", "alice", str(images["query"]), env={"SIGVERIFY_THRESHOLD": "1"}).exit_code == 1
    assert sigverify("customers", "threshold", "ghost", "0.5").exit_code == 2
    assert sigverify("customers", "threshold", "alice").exit_code == 2
