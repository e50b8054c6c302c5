"""The store: customer IDs, embeddings in SQL, deletion, and keeping the FAISS index equal to SQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, func, select

from enroll.service import enroll_signatures
from store.consistency import rebuild_index, sql_summary, sync_index
from store.customers import delete_customer, list_customers, reference_vectors, validate_customer_id
from store.database import Store, embedding_from_bytes, embedding_to_bytes
from store.errors import CustomerNotFoundError, InvalidCustomerIdError
from store.migrate import upgrade_database
from store.schema import Customer, Reference, Verification
from store.settings import Settings
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


@pytest.fixture
def sql_store(tmp_path: Path, database_url: str) -> Iterator[Store]:
    """A migrated Store without an index or a model (the SQL queries only)."""
    settings = Settings(data_dir=tmp_path / "var", database_url=database_url)
    upgrade_database(settings)
    opened = Store(settings)
    yield opened
    opened.close()


def add_references(store: Store, rows: list[tuple[str, str]]) -> dict[str, list[int]]:
    """Insert references ``(customer external ID, model version)`` in this order (creating the
    customers); each embedding is filled with its reference id. Returns the reference ids per customer."""
    ids: dict[str, list[int]] = {}
    with store.transaction() as session:
        customers = {name: Customer(external_id=name) for name, _ in rows}
        session.add_all(customers.values())
        for number, (name, version) in enumerate(rows):
            reference = Reference(customer=customers[name], image_png=b"", sha256=f"{number:064x}",
                                  embedding=embedding_to_bytes(np.zeros(256)), model_version=version)
            session.add(reference)
            session.flush()
            reference.embedding = embedding_to_bytes(np.full(256, reference.id, dtype=np.float32))
            ids.setdefault(name, []).append(reference.id)
    return ids


def test_reference_vectors_returns_each_customers_references_of_one_version(sql_store: Store):
    ids = add_references(sql_store, [("c", "v1"), ("a", "v1"), ("a", "v2"), ("b", "v2"), ("c", "v1"),
                                     ("a", "v1"), ("d", "v1")])
    with sql_store.sessions() as session:
        pks = dict(session.execute(select(Customer.external_id, Customer.id)).all())
        asked = [pks["a"], pks["b"], pks["c"]]  # not d
        found = {version: reference_vectors(session, asked, version) for version in ("v1", "v2")}
        assert reference_vectors(session, [], "v1") == {}
        assert reference_vectors(session, asked, "v3") == {}
    a, b, c = ids["a"], ids["b"], ids["c"]
    expected = {"v1": {pks["a"]: [a[0], a[2]], pks["c"]: c},
                "v2": {pks["a"]: [a[1]], pks["b"]: b}}
    for version, by_customer in expected.items():
        assert {pk: list(found[version][pk][0]) for pk in found[version]} == by_customer
        for reference_ids, vectors in found[version].values():
            assert vectors.shape == (len(reference_ids), 256) and vectors.dtype == np.float32
            assert np.array_equal(vectors[:, 0], reference_ids.astype(np.float32))


@pytest.mark.parametrize("customers", [1, 3, 60])
def test_reference_vectors_query_uses_the_customer_and_version_index_on_sqlite(
    tmp_path: Path, customers: int
):
    """On a fresh SQLite database (no ANALYZE statistics) the query reads only the asked customers'
    index entries, not every reference through the model_version index that all of them share."""
    store = Store(Settings(data_dir=tmp_path / "var"))
    upgrade_database(store.settings)
    try:
        add_references(store, [(f"c{n}", "v1") for n in range(100) for _ in range(2)])
        statements: list[tuple[str, object]] = []

        def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            statements.append((statement, parameters))

        with store.sessions() as session:
            pks = list(session.scalars(select(Customer.id).order_by(Customer.id)))[:customers]
            event.listen(store.engine, "before_cursor_execute", capture)
            try:
                assert len(reference_vectors(session, pks, "v1")) == customers
            finally:
                event.remove(store.engine, "before_cursor_execute", capture)
            [(statement, parameters)] = statements
            plan = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            steps = [str(row[3]) for row in plan]
    finally:
        store.close()
    reads = [step for step in steps if "references" in step]
    assert reads, steps
    assert all("USING INDEX ix_references_customer_id_model_version" in step for step in reads), steps
