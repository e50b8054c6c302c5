"""Load and soak: verify, identify and enroll mixed against ``sigverify serve``; two servers on PostgreSQL.

``python -m bench.load_bench [--seconds 300] [--clients 6] [--workers N] [--postgres-url URL]`` prints
one JSON object; ``run()`` is what ``make bench`` (bench/run.py) calls.

Soak: a real ``sigverify serve --workers CORES --threads 2`` on loopback with a fresh SQLite data dir
and the shipped model. A bounded pool of client threads (each on its own keep-alive connection, the
next request sent when the last is answered) mixes 70% verify, 15% identify and 15% enrollment of a
new customer (three new synthetic signatures) for ``--seconds``. Reported: every answer that is not
the success status or no answer at all is an error (target 0); the RSS of the server processes,
sampled every few seconds (bound: growth after the warm-up minute below ``RSS_GROWTH_BOUND_MB``);
the audit rows in SQL against the verifications answered 200 (must be equal).

Two servers: A and B, one worker each, own data dirs (own FAISS caches), sharing a fresh schema of
the PostgreSQL database. Each customer is enrolled through A and then verified by ID (needs only SQL)
and identified (needs B's FAISS cache to catch up from SQL) through B, retrying until it answers; the
delays are reported.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from bench.http_bench import (
    memory_mb,
    model_file,
    multipart,
    process_tree,
    run_threads,
    server,
    setup_operator,
)

RSS_GROWTH_BOUND_MB = 50.0
RSS_SAMPLE_SECONDS = 5.0
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MIX = {"verify": 0.70, "identify": 0.15, "enroll": 0.15}
SUCCESS = {"verify": 200, "identify": 200, "enroll": 201}
BENCH_ENV = {"SIGVERIFY_ENROLL_BLOCKING_WARNINGS": ""}  # synthetic writers look alike; never block


class ApiClient:
    """One keep-alive connection to the JSON API of a sigverify server, with its API key."""

    def __init__(self, url: str, key: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.key, self.timeout = parts.hostname, parts.port, key, timeout
        self.connection: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, fields: dict[str, str] | None = None,
             files: dict[str, list[bytes]] | None = None) -> tuple[int, dict[str, Any]]:
        """Send one request to ``/api/v1`` + ``path``; returns the status and the JSON body ({} if none).

        Raises OSError or http.client.HTTPException when no answer comes (the connection is reset).
        """
        headers = {"X-API-Key": self.key}
        body = None
        if fields is not None or files is not None:
            body, headers["Content-Type"] = multipart(fields or {}, files or {})
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.connection.request(method, "/api/v1" + path, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, (json.loads(data) if is_json and data else {})

    def enroll(self, customer_id: str, images: list[bytes]) -> tuple[int, dict[str, Any]]:
        """POST the images as the customer's new references."""
        return self.call("POST", f"/customers/{customer_id}/references", {}, {"images": images})

    def verify(self, customer_id: str, image: bytes) -> tuple[int, dict[str, Any]]:
        """POST one verification."""
        return self.call("POST", "/verify", {"customer_id": customer_id}, {"image": [image]})

    def identify(self, image: bytes, top: int = 5) -> tuple[int, dict[str, Any]]:
        """POST one 1:N identification."""
        return self.call("POST", "/identify", {"top": str(top)}, {"image": [image]})

    def close(self) -> None:
        """Drop the connection (the next call opens a new one)."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def signature(writer: int, sample: int, forgery: bool = False) -> bytes:
    """PNG bytes of a synthetic signature (the generator the tests use)."""
    from tests.conftest import signature_png

    return signature_png(writer, sample, forgery)


class Counters:
    """Thread-safe tallies of one load run: latencies per operation, errors, enrolled customers."""

    def __init__(self, customers: list[str], mix: dict[str, float]) -> None:
        self.lock = threading.Lock()
        self.mix = mix
        self.latencies: dict[str, list[float]] = {name: [] for name in MIX}
        self.errors: dict[str, int] = {name: 0 for name in MIX}
        self.error_samples: list[str] = []
        self.customers = list(customers)
        self.next_writer = 1000

    def record(self, operation: str, seconds: float, ok: bool, detail: str = "") -> None:
        """Count one answered (or failed) request."""
        with self.lock:
            self.latencies[operation].append(seconds)
            if not ok:
                self.errors[operation] += 1
                if len(self.error_samples) < 10:
                    self.error_samples.append(f"{operation}: {detail}"[:300])

    def new_writer(self) -> int:
        """A writer number no other request used, so every enrollment uploads new images."""
        with self.lock:
            self.next_writer += 1
            return self.next_writer


def one_request(client: ApiClient, counters: Counters, rng: random.Random) -> None:
    """Send one request of the mix and record it."""
    operation = rng.choices(list(counters.mix), list(counters.mix.values()))[0]
    customer = rng.choice(counters.customers)
    writer = int(customer.rsplit("-", 1)[1])
    started = time.perf_counter()
    try:
        if operation == "enroll":
            writer = counters.new_writer()
            customer = f"load-{writer}"
            status, body = client.enroll(customer, [signature(writer, sample) for sample in range(3)])
        elif operation == "identify":
            status, body = client.identify(signature(writer, 5))
        else:
            status, body = client.verify(customer, signature(writer, 7, forgery=rng.random() < 0.5))
    except (OSError, http.client.HTTPException) as error:
        counters.record(operation, time.perf_counter() - started, False, repr(error))
        return
    ok = status == SUCCESS[operation]
    counters.record(operation, time.perf_counter() - started, ok, f"{status} {body}")
    if ok and operation == "enroll":
        with counters.lock:
            counters.customers.append(customer)


def drive(url: str, key: str, counters: Counters, clients: int, seconds: float) -> float:
    """``clients`` threads send the mix until ``seconds`` pass; returns the elapsed time."""
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        rng = random.Random(number)
        api = ApiClient(url, key)
        while time.monotonic() < deadline:
            one_request(api, counters, rng)
        api.close()

    return run_threads(client, clients)


def sample_memory(pid: int, stop: threading.Event, samples: list[tuple[float, float]]) -> None:
    """Append (seconds since start, RSS MB of the server tree) every RSS_SAMPLE_SECONDS until stopped."""
    started = time.monotonic()
    while True:
        samples.append((round(time.monotonic() - started, 1), round(memory_mb(process_tree(pid)), 1)))
        if stop.wait(RSS_SAMPLE_SECONDS):
            return


def memory_summary(samples: list[tuple[float, float]], warm_up: float) -> dict[str, Any]:
    """RSS at the end of the warm-up, at the end, its maximum and the growth in between."""
    after = [rss for when, rss in samples if when >= warm_up] or [samples[-1][1]]
    growth = after[-1] - after[0]
    return {"rss_start_mb": samples[0][1], "rss_after_warm_up_mb": after[0], "rss_end_mb": after[-1],
            "rss_max_mb": max(rss for _, rss in samples), "rss_growth_mb": round(growth, 1),
            "rss_growth_bound_mb": RSS_GROWTH_BOUND_MB, "rss_within_bound": growth < RSS_GROWTH_BOUND_MB,
            "rss_samples": samples}


def latency_summary(counters: Counters, elapsed: float) -> dict[str, Any]:
    """Count, rate and p50/p99 per operation."""
    summary: dict[str, Any] = {}
    for name, times in counters.latencies.items():
        values = np.asarray(times or [0.0]) * 1000.0
        summary[name] = {"requests": len(times), "errors": counters.errors[name],
                         "per_second": round(len(times) / elapsed, 1),
                         "p50_ms": round(float(np.percentile(values, 50)), 1),
                         "p99_ms": round(float(np.percentile(values, 99)), 1)}
    return summary


def audit_rows(database: Path) -> int:
    """Verification audit rows in the SQLite file, read with plain sqlite3."""
    with closing(sqlite3.connect(database, timeout=30)) as connection:
        return int(connection.execute("SELECT count(*) FROM verifications").fetchone()[0])


def enroll_initial(url: str, key: str, customers: int) -> list[str]:
    """Enroll writers 1..N as ``cust-N`` with three signatures each; returns their IDs."""
    api = ApiClient(url, key, timeout=120)
    enrolled = []
    for writer in range(1, customers + 1):
        status, body = api.enroll(f"cust-{writer}", [signature(writer, sample) for sample in range(3)])
        if status != 201:
            raise RuntimeError(f"enrollment failed: {status} {body}")
        enrolled.append(f"cust-{writer}")
    api.close()
    return enrolled


def soak(seconds: float, clients: int, workers: int, threads: int, customers: int,
         mix: dict[str, float]) -> dict[str, Any]:
    """The mixed load against one server on SQLite: errors, memory, audit rows."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        path, kind = model_file(work)
        settings_args = ["--data-dir", str(work / "var"), "--model", str(path)]
        key = setup_operator(settings_args, BENCH_ENV)
        with server(settings_args, threads, workers, BENCH_ENV) as (url, process):
            counters = Counters(enroll_initial(url, key, customers), mix)
            verified_before = audit_rows(work / "var" / "sigverify.db")
            samples: list[tuple[float, float]] = []
            stop = threading.Event()
            sampler = threading.Thread(target=sample_memory, args=(process.pid, stop, samples))
            sampler.start()
            elapsed = drive(url, key, counters, clients, seconds)
            stop.set()
            sampler.join()
        verified = audit_rows(work / "var" / "sigverify.db") - verified_before
    answered = len(counters.latencies["verify"]) - counters.errors["verify"]
    return {"model": kind, "seconds": round(elapsed, 1), "mix": mix, "clients": clients,
            "server_workers": workers,
            "server_threads": threads, "errors": sum(counters.errors.values()),
            "error_samples": counters.error_samples, "operations": latency_summary(counters, elapsed),
            "load_average_before": round(load_before, 2),
            "customers_at_end": len(counters.customers), "audit_rows": verified,
            "verifications_answered": answered, "audit_equals_verifications": verified == answered,
            **memory_summary(samples, min(60.0, seconds / 5))}


@contextmanager
def postgres_schema(admin_url: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL database (dropped afterwards); yields a URL that uses it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"load_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def wait_until(check: Any, timeout: float) -> tuple[float | None, int]:
    """Seconds until ``check()`` is true (polled) or None when ``timeout`` passes first; and the tries."""
    started, tries = time.perf_counter(), 0
    while time.perf_counter() - started < timeout:
        tries += 1
        if check():
            return time.perf_counter() - started, tries
        time.sleep(0.005)
    return None, tries


def verifies(api: ApiClient, customer: str, image: bytes) -> bool:
    """True when the server verifies ``image`` against ``customer`` (200, match or not)."""
    return api.verify(customer, image)[0] == 200


def identifies(api: ApiClient, customer: str, image: bytes) -> bool:
    """True when ``customer`` is among the top 3 candidates the server identifies for ``image``."""
    status, body = api.identify(image, 3)
    return status == 200 and any(found["customer_id"] == customer for found in body["candidates"])


def propagation(url_a: str, url_b: str, key: str, customers: int, timeout: float = 30.0) -> dict[str, Any]:
    """Enroll through A; measure until B verifies (by ID) and identifies each new customer.

    A delay is counted from A's 201 answer to B's first right answer, so it includes B's own
    request time; ``first_try`` counts the customers B got right on its first request.
    """
    a, b = ApiClient(url_a, key), ApiClient(url_b, key)
    delays: dict[str, list[float]] = {"verify": [], "identify": []}
    first_try = {"verify": 0, "identify": 0}
    failures = 0
    for writer in range(1, customers + 1):
        customer = f"pg-{writer}"
        status, body = a.enroll(customer, [signature(writer, sample) for sample in range(3)])
        if status != 201:
            raise RuntimeError(f"enrollment through A failed: {status} {body}")
        query = signature(writer, 3)
        for name, check in (("verify", verifies), ("identify", identifies)):
            seconds, tries = wait_until(partial(check, b, customer, query), timeout)
            failures += seconds is None
            first_try[name] += tries == 1 and seconds is not None
            delays[name].append(timeout if seconds is None else seconds)
    a.close()
    b.close()
    result: dict[str, Any] = {"customers": customers, "not_seen_by_b": failures}
    for name, values in delays.items():
        result.update({f"{name}_delay_{stat}_ms": value for stat, value in _stats(values).items()})
        result[f"{name}_first_try"] = first_try[name]
    return result


def _stats(seconds: list[float]) -> dict[str, float]:
    """p50 and max in ms."""
    values = np.asarray(seconds) * 1000.0
    return {"p50": round(float(np.percentile(values, 50)), 1), "max": round(float(values.max()), 1)}


def two_servers(postgres_url: str, customers: int) -> dict[str, Any]:
    """Servers A and B on one PostgreSQL schema: how long until B sees what A enrolled."""
    from sqlalchemy.exc import OperationalError

    try:
        schema = postgres_schema(postgres_url)
        database_url = schema.__enter__()
    except OperationalError as error:  # no PostgreSQL here: say so in the results
        return {"skipped": f"no PostgreSQL at {postgres_url}: {str(error.orig).splitlines()[0]}"}
    try:
        with tempfile.TemporaryDirectory() as temporary:
            work = Path(temporary)
            path, kind = model_file(work)
            env = {**BENCH_ENV, "SIGVERIFY_DATABASE_URL": database_url}
            args_a = ["--data-dir", str(work / "a"), "--model", str(path)]
            args_b = ["--data-dir", str(work / "b"), "--model", str(path)]
            key = setup_operator(args_a, env)
            with server(args_a, 2, 1, env) as (url_a, _), server(args_b, 2, 1, env) as (url_b, _):
                return {"model": kind, **propagation(url_a, url_b, key, customers)}
    finally:
        schema.__exit__(None, None, None)


def run(seconds: float = 300.0, clients: int = 6, workers: int | None = None, threads: int = 2,
        customers: int = 20, postgres_url: str | None = None, mix: dict[str, float] | None = None,
        two: bool = True) -> dict[str, Any]:
    """The soak on SQLite, then the two-server propagation on PostgreSQL, as one flat dict."""
    workers = workers or os.cpu_count() or 1
    url = postgres_url or os.environ.get("SIGVERIFY_TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL
    soaked = soak(seconds, clients, workers, threads, customers, mix or MIX)
    operations = soaked.pop("operations")
    flat = {f"soak_{name}": value for name, value in soaked.items()}
    for operation, numbers in operations.items():
        flat.update({f"soak_{operation}_{name}": value for name, value in numbers.items()})
    if two:
        flat.update({f"two_servers_{name}": value for name, value in two_servers(url, 20).items()})
    return {**flat, "cores": os.cpu_count() or 0}


def parse_mix(text: str) -> dict[str, float]:
    """``verify=0.7,identify=0.15,enroll=0.15`` as a dict (operations left out get 0)."""
    mix = dict.fromkeys(MIX, 0.0)
    for part in text.split(","):
        name, _, share = part.partition("=")
        if name.strip() not in MIX:
            raise argparse.ArgumentTypeError(f"unknown operation {name!r}; known: {', '.join(MIX)}")
        mix[name.strip()] = float(share)
    return mix


def main() -> None:
    """Command line: print the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--workers", type=int, default=None, help="server processes (default: cores)")
    parser.add_argument("--threads", type=int, default=2, help="waitress threads per worker")
    parser.add_argument("--customers", type=int, default=20, help="customers enrolled before the load")
    parser.add_argument("--postgres-url", default=None, help=f"default {DEFAULT_POSTGRES_URL}")
    parser.add_argument("--mix", type=parse_mix, default=MIX,
                        help="shares of the requests, e.g. verify=0.7,identify=0.15,enroll=0.15")
    parser.add_argument("--no-two-servers", action="store_true", help="only the soak")
    args = parser.parse_args()
    result = run(args.seconds, args.clients, args.workers, args.threads, args.customers, args.postgres_url,
                 args.mix, not args.no_two_servers)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
