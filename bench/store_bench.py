"""Store benchmarks: verify-by-ID overhead, 1:N search at scale, enrollment into a large store, bulk
import throughput.

``python -m bench.store_bench [--customers N] [--references N] [--quick]`` prints one JSON object;
``--only enroll --record`` runs one benchmark and merges its numbers into bench/results.json and
results.md; ``run()`` is what ``make bench`` (bench/run.py) calls. Synthetic vectors stand in for
embeddings:

* verify: ``verify_signature`` against a SQLite database of ``customers`` x 3 references, with the
  embedding step replaced by a precomputed vector, so the time is everything outside the network
  (customer look-up, loading the reference vectors, head scores, aggregation, audit row commit).
* identify: ``VectorIndex`` (IVF past ``ivf_min_size``) over ``references`` unit vectors with a
  low-dimensional structure like real embeddings (a customer's references cluster); queries are new
  noisy samples of random customers; recall@10 is measured against exact inner-product search.
* enroll: ``enroll_signatures`` of one new customer (3 synthetic PNGs, decoded and preprocessed; the
  network replaced by given vectors) into a SQLite store holding ``enroll_references`` references
  (IVF index), first with the index file written after every change (``index_save_every`` 1, the
  behaviour before it was deferred), then with the default setting, in the same run and data dir.
* import: ``import_dataset`` of a synthetic CEDAR-layout set with the shipped model (or an untrained
  one of the same architecture when the weights are absent), in signatures per second.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from siamese.scoring import ScoreNormalisation

DIM = 256
LATENT = 24


class VectorsOnlyModel:
    """A head with random weights and an ``embed`` that returns a fixed query vector (no network)."""

    version = "bench"
    threshold = 0.5
    embedding_dim = DIM
    normalisation = ScoreNormalisation(strength=0.5, centre=2.8, top=3)  # the rule's cost, as shipped

    def __init__(self, query: np.ndarray) -> None:
        rng = np.random.default_rng(7)
        self._kernel = rng.normal(0, 0.1, DIM).astype(np.float32)
        self.query = query

    def embed(self, images: list[Any], max_pixels: int = 0) -> np.ndarray:
        return np.repeat(self.query[None, :], len(images), axis=0)

    def embed_preprocessed(self, batch: np.ndarray) -> np.ndarray:
        """The rows of ``query`` (one vector, or one per image) in place of the network's output."""
        return np.resize(np.atleast_2d(self.query), (len(batch), DIM)).astype(np.float32)

    def score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        logits = np.abs(np.atleast_2d(a) - np.atleast_2d(b)) @ self._kernel
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def score_matrix(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        logits = np.abs(np.atleast_2d(a)[:, None, :] - np.atleast_2d(b)[None, :, :]) @ self._kernel
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def structured_vectors(customers: int, per_customer: int, seed: int = 0) -> tuple[np.ndarray, Any]:
    """Unit vectors with low intrinsic dimension: customer centres plus per-signature noise."""
    rng = np.random.default_rng(seed)
    projection = rng.normal(size=(LATENT, DIM)).astype(np.float32)
    centres = rng.normal(size=(customers, LATENT)).astype(np.float32)

    def sample(owner: np.ndarray) -> np.ndarray:
        latent = centres[owner] + 0.3 * rng.normal(size=(len(owner), LATENT)).astype(np.float32)
        vectors = latent @ projection + 0.5 * rng.normal(size=(len(owner), DIM)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    owners = np.repeat(np.arange(customers), per_customer)
    chunks = [sample(owners[start:start + 100_000]) for start in range(0, len(owners), 100_000)]
    return np.concatenate(chunks).astype(np.float32), sample


def insert_customers(store: Any, vectors: np.ndarray, per_customer: int) -> None:
    """Customers ``c0000000``... with ``per_customer`` references each (rows of ``vectors``), in SQL only."""
    from sqlalchemy import insert

    from store.schema import Customer, Reference

    customers = len(vectors) // per_customer
    now = datetime.now(timezone.utc)
    with store.engine.begin() as connection:
        for start in range(0, customers, 20_000):
            stop = min(customers, start + 20_000)
            connection.execute(insert(Customer), [
                {"id": i + 1, "external_id": f"c{i:07d}", "status": "active",
                 "created_at": now, "updated_at": now} for i in range(start, stop)])
            connection.execute(insert(Reference), [
                {"customer_id": i // per_customer + 1, "image_png": b"", "sha256": f"{i:064x}",
                 "embedding": vectors[i].tobytes(), "model_version": VectorsOnlyModel.version,
                 "created_at": now, "updated_at": now}
                for i in range(start * per_customer, stop * per_customer)])


def bench_verify(customers: int, per_customer: int = 3, queries: int = 300) -> dict[str, Any]:
    """p50/p99 of verify_signature outside the embedding, over ``customers`` enrolled customers."""
    from store.database import Store
    from store.migrate import upgrade_database
    from store.settings import Settings
    from verify.service import verify_signature

    vectors, _ = structured_vectors(customers, per_customer, seed=1)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder))
        upgrade_database(settings)
        started = time.perf_counter()
        with Store(settings) as store:
            insert_customers(store, vectors, per_customer)
            load_seconds = time.perf_counter() - started
            model = VectorsOnlyModel(vectors[0])
            rng = np.random.default_rng(3)
            times = []
            for number in range(queries):
                customer = int(rng.integers(customers))
                model.query = vectors[customer * per_customer]
                begin = time.perf_counter()
                verify_signature(store, model, f"c{customer:07d}", b"query-%d" % number)  # type: ignore[arg-type]
                times.append(time.perf_counter() - begin)
    times_ms = np.asarray(times[10:]) * 1000.0
    return {"verify_customers": customers, "verify_references": customers * per_customer,
            "verify_p50_ms": float(np.percentile(times_ms, 50)),
            "verify_p99_ms": float(np.percentile(times_ms, 99)),
            "verify_db_load_s": round(load_seconds, 1)}


def bench_identify(references: int, per_customer: int = 5, queries: int = 200) -> dict[str, Any]:
    """Per-query latency and recall@10 of the IVF index against exact search."""
    from store.index import VectorIndex

    customers = references // per_customer
    vectors, sample = structured_vectors(customers, per_customer, seed=2)
    ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
    started = time.perf_counter()
    index = VectorIndex.build(DIM, "bench", ids, vectors, ivf_min_size=min(100_000, references))
    build_seconds = time.perf_counter() - started
    owners = np.random.default_rng(4).integers(customers, size=queries)
    query_vectors = sample(owners)
    exact = np.empty((queries, 10), dtype=np.int64)
    for row in range(0, queries, 50):
        scores = vectors @ query_vectors[row:row + 50].T
        top = np.argpartition(-scores, 10, axis=0)[:10].T
        order = np.take_along_axis(scores.T, top, axis=1).argsort(axis=1)[:, ::-1]
        exact[row:row + 50] = ids[np.take_along_axis(top, order, axis=1)]
    result: dict[str, Any] = {"identify_references": references, "identify_index": index.kind,
                              "identify_build_s": round(build_seconds, 1)}
    for nprobe in (8, 16, 32, 64):
        index.set_nprobe(nprobe)
        times, found = [], []
        for query in query_vectors:
            begin = time.perf_counter()
            _, hits = index.search(query[None, :], 10)
            times.append(time.perf_counter() - begin)
            found.append(hits[0])
        recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)]))
        result[f"identify_nprobe{nprobe}_ms_p50"] = float(np.percentile(np.asarray(times) * 1000, 50))
        result[f"identify_nprobe{nprobe}_recall_at_10"] = recall
    return result


def bench_enroll(
    references: int = 200_000, old_enrollments: int = 5, enrollments: int = 30, per_customer: int = 3
) -> dict[str, Any]:
    """Latency of one enrollment into a store of ``references``: index file written after every change
    (``index_save_every`` 1) versus the default (written every 1000 changes and at close)."""
    from enroll.service import enroll_signatures
    from store.consistency import sync_index
    from store.database import Store
    from store.migrate import upgrade_database
    from store.settings import Settings
    from tests.synthetic import png_bytes, synthetic_signature

    customers = references // per_customer
    vectors, _ = structured_vectors(customers + old_enrollments + enrollments, per_customer, seed=5)
    base = Settings(enroll_blocking_warnings="")
    result: dict[str, Any] = {"enroll_references": customers * per_customer, "enroll_images": per_customer,
                              "enroll_default_save_every": base.index_save_every}
    with tempfile.TemporaryDirectory() as folder:
        settings = base.with_overrides(data_dir=Path(folder))
        upgrade_database(settings)
        with Store(settings) as store:
            insert_customers(store, vectors[: customers * per_customer], per_customer)
        writer = iter(range(customers, customers + old_enrollments + enrollments))

        def enroll_one(store: Store, model: VectorsOnlyModel) -> float:
            number = next(writer)
            model.query = vectors[number * per_customer:(number + 1) * per_customer]
            images = [png_bytes(synthetic_signature(number, s)) for s in range(per_customer)]
            started = time.perf_counter()
            enroll_signatures(store, model, f"new{number}", images)  # type: ignore[arg-type]
            return time.perf_counter() - started

        for label, save_every, count in (("save_every_1", 1, old_enrollments),
                                         ("default", base.index_save_every, enrollments)):
            model = VectorsOnlyModel(vectors[0])
            store = Store(settings.with_overrides(index_save_every=save_every))
            sync_index(store, model.version)  # loads the file (the first time: builds and writes it)
            times_ms = 1000 * np.array([enroll_one(store, model) for _ in range(count)])
            started = time.perf_counter()
            store.close()  # writes the changes the file lacks (none with save_every 1)
            result[f"enroll_{label}_p50_ms"] = float(np.percentile(times_ms, 50))
            result[f"enroll_{label}_max_ms"] = float(times_ms.max())
            result[f"enroll_{label}_mean_ms"] = float(times_ms.mean())
            result[f"enroll_{label}_close_s"] = round(time.perf_counter() - started, 2)
            result[f"enroll_{label}_count"] = count
        result["enroll_index_file_mb"] = round(settings.index_path.stat().st_size / 2**20, 1)
    write_ms = 1000 * result["enroll_default_close_s"]  # one whole write, as at every change before
    result["enroll_default_amortised_ms"] = (result["enroll_default_mean_ms"]
                                             + write_ms * per_customer / base.index_save_every)
    result["enroll_speedup_p50"] = result["enroll_save_every_1_p50_ms"] / result["enroll_default_p50_ms"]
    result["enroll_speedup_amortised"] = (result["enroll_save_every_1_mean_ms"]
                                          / result["enroll_default_amortised_ms"])
    return result


def bench_import(writers: int = 20, per_writer: int = 5) -> dict[str, Any]:
    """Bulk import throughput with the real model on synthetic CEDAR-layout signatures."""
    from enroll.bulk import import_dataset
    from siamese.model import SHIPPED_MODEL, SignatureModel
    from store.consistency import sync_index
    from store.database import Store
    from store.migrate import upgrade_database
    from store.settings import Settings
    from tests.synthetic import write_cedar_layout

    shipped = SHIPPED_MODEL.is_file()
    model = SignatureModel.load() if shipped else SignatureModel.untrained(0)
    with tempfile.TemporaryDirectory() as folder:
        root = write_cedar_layout(Path(folder) / "cedar", writers=writers, genuine=per_writer, forgeries=0)
        settings = Settings(data_dir=Path(folder) / "var", enroll_blocking_warnings="")
        upgrade_database(settings)
        with Store(settings) as store:
            sync_index(store, model.version)
            report = import_dataset(store, model, root, "cedar", per_writer, progress=False)
            decision = bench_decode_to_decision(store, model, writers)
    data = report.to_dict()
    return {"import_model": "shipped" if shipped else "untrained", "import_signatures": data["signatures"],
            "import_signatures_per_s": data["signatures_per_second"], **decision}


def bench_decode_to_decision(store: Any, model: Any, writers: int, rounds: int = 10) -> dict[str, Any]:
    """``verify_signature`` from PNG bytes to the audited decision, on the imported customers."""
    from sqlalchemy import select

    from store.schema import Customer
    from tests.synthetic import png_bytes, synthetic_signature
    from verify.service import verify_signature

    with store.sessions() as session:
        customer_ids = session.scalars(select(Customer.external_id).order_by(Customer.id)).all()
    queries = [(customer_id, png_bytes(synthetic_signature(number, 99, background=200)))
               for number, customer_id in enumerate(customer_ids[:writers], start=1)]
    verify_signature(store, model, *queries[0])  # warm-up
    times = []
    for _ in range(rounds):
        for customer_id, data in queries:
            started = time.perf_counter()
            verify_signature(store, model, customer_id, data)
            times.append(time.perf_counter() - started)
    milliseconds = 1000 * np.array(times)
    return {"verify_decode_to_decision_p50_ms": float(np.percentile(milliseconds, 50)),
            "verify_decode_to_decision_p99_ms": float(np.percentile(milliseconds, 99)),
            "verify_decode_to_decision_queries": len(times)}


BENCHMARKS = ("verify", "identify", "enroll", "import")


def run(customers: int = 100_000, references: int = 1_000_000, quick: bool = False,
        only: tuple[str, ...] = BENCHMARKS) -> dict[str, Any]:
    """The benchmarks named in ``only`` (default all; ``quick``: 10k customers, 100k references for
    verify and identify, 20k for enroll)."""
    if quick:
        customers, references = 10_000, 100_000
    results: dict[str, Any] = {}
    if "verify" in only:
        results.update(bench_verify(customers))
    if "identify" in only:
        results.update(bench_identify(references))
    if "enroll" in only:
        results.update(bench_enroll(20_000 if quick else 200_000))
    if "import" in only:
        results.update(bench_import())
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--references", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10k customers, 100k references")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="Run only this one (repeatable).")
    parser.add_argument("--record", action="store_true",
                        help="Merge the numbers into bench/results.json and results.md (as make bench does).")
    options = parser.parse_args()
    measured = run(options.customers, options.references, options.quick, tuple(options.only or BENCHMARKS))
    if options.record:
        from bench.run import record

        record("store_bench", measured)
    print(json.dumps(measured, indent=1))
