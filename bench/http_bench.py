"""HTTP benchmark: ``POST /api/v1/verify`` from 8 concurrent clients for 30 s against ``sigverify serve``.

``python -m bench.http_bench [--seconds S] [--clients N] [--customers N] [--workers N] [--threads N]
[--model-runtime litert|tensorflow]``
prints one JSON object; ``run()`` is what ``make bench`` (bench/run.py) calls. It starts a real
``sigverify serve --workers CORES --threads 2`` (waitress) on loopback with a fresh data dir and the
shipped model (or an untrained one of the same architecture when the weights are absent), enrolls
synthetic customers through the API, then each client sends verifications on its own keep-alive
connection for the duration. Throughput, latency percentiles and errors (any non-200 answer or failed
request) are measured on the client side. Target: p99 <= 100 ms and no error.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
URL_LINE = re.compile(r"serving on (http://\S+/)")
PASSWORD = "bench-password-0"


def multipart(fields: dict[str, str], files: dict[str, list[bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    for name, contents in files.items():
        for number, content in enumerate(contents):
            head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                    f'filename="{number}.png"\r\nContent-Type: image/png\r\n\r\n')
            parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def model_file(work: Path) -> tuple[Path, str]:
    """The shipped model, or an untrained one saved under ``work`` when the weights are absent."""
    from siamese.model import SHIPPED_MODEL, SignatureModel

    if SHIPPED_MODEL.is_file():
        return SHIPPED_MODEL, "shipped"
    path = work / "untrained.keras"
    SignatureModel.untrained(0).keras_model.save(path)
    return path, "untrained"


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``SIGVERIFY_*`` variables, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SIGVERIFY_")}, **(extra or {})}


def sigverify(settings_args: list[str], env: dict[str, str] | None, *args: str) -> str:
    """Run a ``sigverify`` command; returns its stdout."""
    command = [sys.executable, "-m", "webapp.cli", *settings_args, *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=environment(env), check=True, capture_output=True,
                          text=True).stdout


def setup_operator(settings_args: list[str], env: dict[str, str] | None) -> str:
    """Create the operator ``bench`` and return a new API key of theirs."""
    sigverify(settings_args, env, "users", "create", "bench", "--role", "operator", "--password", PASSWORD)
    return sigverify(settings_args, env, "users", "create-key", "bench").strip()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (read from /proc)."""
    found = [pid]
    for current in found:
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                found.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def memory_mb(pids: list[int], field: str = "VmRSS") -> float:
    """Sum of one /proc status field (VmRSS now, VmHWM peak) over ``pids`` in MiB; gone processes count 0."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024.0


@contextmanager
def server(settings_args: list[str], threads: int, workers: int,
           env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A running ``sigverify serve`` on a free loopback port; yields its URL and process once it listens."""
    command = [sys.executable, "-m", "webapp.cli", *settings_args, "serve", "--port", "0",
               "--threads", str(threads), "--workers", str(workers)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment(env), stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:
            found = URL_LINE.search(line)
            if found:
                threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
                yield found.group(1), process
                return
        raise RuntimeError("sigverify serve did not start")
    finally:
        process.terminate()
        process.wait(timeout=60)


def run_threads(target: Callable[[int], None], count: int) -> float:
    """Run ``target(0..count-1)`` in ``count`` threads until all return; returns the elapsed seconds."""
    started = time.monotonic()
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def request(connection: http.client.HTTPConnection, path: str, key: str, body: bytes,
            content_type: str) -> tuple[int, bytes]:
    """One POST on a keep-alive connection."""
    connection.request("POST", path, body=body, headers={"X-API-Key": key, "Content-Type": content_type})
    response = connection.getresponse()
    return response.status, response.read()


def enroll_customers(url: str, key: str, customers: int) -> list[bytes]:
    """Enroll writers 1..N with three signatures each; returns their query images (genuine and forged)."""
    from tests.conftest import signature_png

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    queries = []
    for writer in range(1, customers + 1):
        body, content_type = multipart({}, {"images": [signature_png(writer, s) for s in range(3)]})
        path = f"/api/v1/customers/c{writer}/references"
        status, answer = request(connection, path, key, body, content_type)
        if status != 201:
            raise RuntimeError(f"enrollment failed: {status} {answer[:200]!r}")
        queries.append(signature_png(writer, 7, forgery=writer % 2 == 0))
    connection.close()
    return queries


def load(url: str, key: str, queries: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads send verifications for ``seconds``; latency and error counts."""
    bodies = [multipart({"customer_id": f"c{number + 1}"}, {"image": [query]})
              for number, query in enumerate(queries)]
    parts = urlsplit(url)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        rng = random.Random(number)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while time.monotonic() < deadline:
            body, content_type = bodies[rng.randrange(len(bodies))]
            started = time.perf_counter()
            try:
                status, _ = request(connection, "/api/v1/verify", key, body, content_type)
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            latencies[number].append(time.perf_counter() - started)
            errors[number] += status != 200
        connection.close()

    elapsed = run_threads(client, clients)
    times = np.asarray([t for per_client in latencies for t in per_client]) * 1000.0
    percentiles = {f"p{q}_ms": round(float(np.percentile(times, q)), 1) for q in (50, 90, 99)}
    return {"requests": int(times.size), "errors": int(sum(errors)),
            "throughput_rps": round(times.size / elapsed, 1), **percentiles,
            "max_ms": round(float(times.max()), 1)}


def run(seconds: float = 30.0, clients: int = 8, customers: int = 20, threads: int = 2,
        workers: int | None = None, runtime: str = "litert") -> dict[str, Any]:
    """Start a server (``workers`` processes, default one per core; ``runtime`` embeds, see
    ``siamese.litert``), enroll ``customers``, then measure verify under ``clients`` concurrent
    clients."""
    workers = workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        path, kind = model_file(work)
        settings_args = ["--data-dir", str(work / "var"), "--model", str(path), "--model-runtime", runtime]
        key = setup_operator(settings_args, None)
        with server(settings_args, threads, workers) as (url, process):
            queries = enroll_customers(url, key, customers)
            load(url, key, queries, clients, min(3.0, seconds))  # warm-up, not counted
            results = load(url, key, queries, clients, seconds)
            peak_mb = memory_mb(process_tree(process.pid), "VmHWM")
    return {"http_model": kind, "http_model_runtime": runtime, "http_clients": clients,
            "http_server_workers": workers, "http_server_threads": threads,
            "http_seconds": seconds, "http_customers": customers,
            **{f"http_verify_{name}": value for name, value in results.items()},
            "http_cores": os.cpu_count() or 0,
            "http_server_peak_memory_mb": round(peak_mb, 1)}


def main() -> None:
    """Command line: print the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="waitress threads per worker")
    parser.add_argument("--workers", type=int, default=None, help="server processes (default: cores)")
    from siamese.litert import DEFAULT_RUNTIME, RUNTIMES

    parser.add_argument("--model-runtime", choices=RUNTIMES, default=DEFAULT_RUNTIME,
                        help="what embeds in the server (default litert, as served)")
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.clients, args.customers, args.threads, args.workers,
                         args.model_runtime), indent=1))


if __name__ == "__main__":
    main()
