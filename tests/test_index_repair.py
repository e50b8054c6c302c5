"""Catching the FAISS cache up with SQL written by other processes: new ids first, a full diff when
that is not enough, a rebuild only when SQL keeps changing under the repair."""

from __future__ import annotations

import numpy as np
import pytest

from enroll.service import enroll_signatures
from store.consistency import index_health, sync_index
from store.database import Store
from store.index import VectorIndex
from tests.conftest import signature_png
from tests.test_store import enroll_writers, index_equals_sql


def test_new_references_of_another_process_are_added_without_a_full_diff(
    fake_store: Store, fake_model, new_store, monkeypatch: pytest.MonkeyPatch
):  # type: ignore[no-untyped-def]
    enroll_writers(fake_store, fake_model, range(1, 3))
    other = new_store(fake_store.settings)
    sync_index(other, fake_model.version)
    enroll_writers(other, fake_model, range(3, 5))
    monkeypatch.setattr("store.consistency._diff_with_sql", lambda *args: pytest.fail("full diff"))
    report = sync_index(fake_store, fake_model.version)
    assert (report.action, report.reason) == ("repaired", "added 6, removed 0")
    assert index_equals_sql(fake_store)


def test_an_id_below_the_last_one_is_found_by_the_full_diff(fake_store: Store, fake_model):  # type: ignore[no-untyped-def]
    enroll_writers(fake_store, fake_model, range(1, 4))
    assert fake_store.index is not None
    fake_store.index.remove(np.asarray([2], dtype=np.int64))  # as if id 2 committed after id 9 was synced
    health = index_health(fake_store, fake_model.version)
    assert (health["consistent"], health["stale_reason"]) == (False, "index_out_of_step")
    report = sync_index(fake_store, fake_model.version)
    assert (report.action, report.reason) == ("repaired", "added 1, removed 0")
    assert index_equals_sql(fake_store)
    assert index_health(fake_store, fake_model.version)["stale_reason"] is None


@pytest.mark.parametrize(("busy_rounds", "action"), [(2, "repaired"), (100, "rebuilt")])
def test_a_writer_busy_during_the_repair(
    fake_store: Store, fake_model, new_store, monkeypatch: pytest.MonkeyPatch, busy_rounds: int, action: str
):  # type: ignore[no-untyped-def]
    enroll_writers(fake_store, fake_model, range(1, 3))
    other = new_store(fake_store.settings)
    sync_index(other, fake_model.version)
    enroll_writers(other, fake_model, range(3, 4))
    writers = iter(range(10, 10 + busy_rounds))
    original_add = VectorIndex.add

    def add_while_another_enrolls(index: VectorIndex, ids: np.ndarray, vectors: np.ndarray) -> None:
        original_add(index, ids, vectors)
        if index is fake_store.index and (writer := next(writers, None)) is not None:
            # no index save: the repair below holds the index lock
            enroll_signatures(other, fake_model, f"cust-{writer}", [signature_png(writer, 0)], save=False)

    monkeypatch.setattr(VectorIndex, "add", add_while_another_enrolls)
    report = sync_index(fake_store, fake_model.version)
    assert report.action == action
    assert index_equals_sql(fake_store)
