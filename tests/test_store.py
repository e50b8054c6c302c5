"""The store: customer IDs, embeddings in SQL, deletion, and keeping the FAISS index equal to SQL."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy import func, select

from enroll.service import enroll_signatures
from store.consistency import rebuild_index, sql_summary, sync_index
from store.customers import delete_customer, list_customers, validate_customer_id
from store.database import Store, embedding_from_bytes, embedding_to_bytes
from store.errors import CustomerNotFoundError, InvalidCustomerIdError
from store.schema import Customer, Reference, Verification
from tests.conftest import signature_png
from verify.service import verify_signature


def enroll_writers(store: Store, model, writers: range, samples: int = 3) -> None:  # type: ignore[no-untyped-def]
    for writer in writers:
        images = [signature_png(writer, sample) for sample in range(samples)]
        enroll_signatures(store, model, f"cust-{writer}", images, force=True)


def index_equals_sql(store: Store) -> bool:
    assert store.index is not None
    with store.sessions() as session:
        sql_ids = sorted(session.scalars(
            select(Reference.id).where(Reference.model_version == store.index.model_version)
        ))
    return list(store.index.ids()) == sql_ids


@pytest.mark.parametrize("good", ["a", "A1", "cust-00042", "x.y_z-1", "9" * 64])
def test_valid_customer_ids(good: str):
    assert validate_customer_id(good) == good


@pytest.mark.parametrize("bad", [
    "", "9" * 65, "with space", "tab\there", "nul\x00", "new\nline", "a/b", "a\\b", "../etc",
    "1'; DROP TABLE customers;--", "-leading", ".hidden", "caf\u00e9", None, 42,
])
def test_invalid_customer_ids_are_rejected(bad: object):
    with pytest.raises(InvalidCustomerIdError):
        validate_customer_id(bad)


def test_embedding_bytes_round_trip():
    vector = np.random.default_rng(0).normal(size=256).astype(np.float32)
    data = embedding_to_bytes(vector)
    assert len(data) == 1024
    assert np.array_equal(embedding_from_bytes(data), vector)
    with pytest.raises(ValueError):
        embedding_to_bytes(np.zeros(10))


def test_index_is_rebuilt_from_sql_when_its_file_is_missing(fake_store: Store, fake_model, new_store):
    enroll_writers(fake_store, fake_model, range(1, 4))
    assert fake_store.settings.index_path.is_file()
    fake_store.settings.index_path.unlink()
    reopened = new_store(fake_store.settings)
    report = sync_index(reopened, fake_model.version)
    assert report.action == "rebuilt" and report.count == 9
    assert index_equals_sql(reopened)
    assert fake_store.settings.index_path.is_file()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "meta"])
def test_damaged_index_file_is_rebuilt_and_no_data_is_lost(
    fake_store: Store, fake_model, damage: str, new_store
):
    enroll_writers(fake_store, fake_model, range(1, 4))
    fake_store.close()  # the file holds the 9 references
    path = fake_store.settings.index_path
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(1).bytes(path.stat().st_size))
    else:
        fake_store.settings.index_meta_path.write_text("[]")
    reopened = new_store(fake_store.settings)
    assert sync_index(reopened, fake_model.version).action == "rebuilt"
    assert index_equals_sql(reopened) and len(reopened.index or []) == 9
    again = new_store(fake_store.settings)
    assert sync_index(again, fake_model.version).action == "loaded"


def test_index_missing_rows_written_by_another_process_is_repaired(fake_store: Store, fake_model, new_store):
    enroll_writers(fake_store, fake_model, range(1, 3))
    other = new_store(fake_store.settings)
    sync_index(other, fake_model.version)
    enroll_writers(other, fake_model, range(3, 5))
    delete_customer(other, "cust-1")
    report = sync_index(fake_store, fake_model.version)
    assert report.action == "repaired" and "added 6, removed 3" in report.reason
    assert index_equals_sql(fake_store)


def test_index_of_another_model_version_is_rebuilt(fake_store: Store, fake_model, new_store):
    enroll_writers(fake_store, fake_model, range(1, 3))
    report = sync_index(new_store(fake_store.settings), "another-version")
    assert report.action == "rebuilt" and report.count == 0


def test_sql_summary_and_rebuild_agree(fake_store: Store, fake_model):
    enroll_writers(fake_store, fake_model, range(1, 4))
    report = rebuild_index(fake_store, fake_model.version)
    assert fake_store.index is not None
    assert fake_store.index.summary() == sql_summary(fake_store, fake_model.version)
    assert report.count == 9


def test_delete_customer_removes_references_and_index_entries_but_keeps_audit(
    fake_store: Store, fake_model, new_store
):
    enroll_writers(fake_store, fake_model, range(1, 3))
    verify_signature(fake_store, fake_model, "cust-1", signature_png(1, 9))
    assert delete_customer(fake_store, "cust-1") == 3
    with fake_store.sessions() as session:
        assert session.scalar(select(Customer).where(Customer.external_id == "cust-1")) is None
        assert session.scalar(select(func.count(Reference.id))) == 3
        audit = session.scalars(select(Verification)).one()
    assert audit.customer_external_id == "cust-1" and audit.customer_id is None
    assert audit.query_sha256 is None and audit.best_reference_id is None
    assert index_equals_sql(fake_store)
    fake_store.close()  # a clean close writes the index file
    reopened = new_store(fake_store.settings)
    assert sync_index(reopened, fake_model.version).action == "loaded"
    with pytest.raises(CustomerNotFoundError):
        delete_customer(fake_store, "cust-1")


def test_list_customers_counts_references(fake_store: Store, fake_model):
    enroll_writers(fake_store, fake_model, range(1, 4), samples=2)
    listed = list_customers(fake_store)
    assert [(c.customer_id, c.reference_count) for c in listed] == [
        ("cust-1", 2), ("cust-2", 2), ("cust-3", 2)]


def test_store_enroll_and_verify_do_not_import_tensorflow_or_flask():
    code = ("import sys, store.cli, store.consistency, enroll.service, enroll.bulk, verify.service, "
            "verify.reindex; print(sorted(m for m in ('tensorflow', 'keras', 'flask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_flat_index_past_ivf_min_size_is_rebuilt_as_ivf(fake_store: Store, fake_model, new_store):
    enroll_writers(fake_store, fake_model, range(1, 4))
    assert fake_store.index is not None and fake_store.index.kind == "flat"
    small = replace(fake_store.settings, ivf_min_size=5)
    reopened = new_store(small)
    report = sync_index(reopened, fake_model.version)
    assert report.action == "rebuilt" and reopened.index is not None and reopened.index.kind == "ivf"
    assert index_equals_sql(reopened)
    assert sync_index(new_store(small), fake_model.version).action == "loaded"
