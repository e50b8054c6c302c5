"""Running the app under waitress: in this process, or in several forked workers sharing one socket.

Python runs one thread at a time per process, so on a machine with several cores ``workers`` > 1
serves more requests at once. The parent binds the socket and forks before anything heavy is
loaded (no TensorFlow, no database connection); each worker builds its own app (model, store,
FAISS cache) and accepts connections from the shared socket. When a worker exits, or the parent is
asked to stop (SIGTERM, SIGINT), every worker is stopped. A worker stops cleanly on SIGTERM or
SIGINT: it finishes the requests in progress (up to waitress's 5 s) and closes its store, which
writes the index changes its file lacks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from store.settings import Settings

IDENT = "sigverify"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def serve(settings: Settings, host: str, port: int, threads: int, workers: int,
          announce: Callable[[str], None]) -> int:
    """Serve until stopped; ``announce`` gets the URL once the socket listens. Returns an exit status."""
    listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    backlog=1024)
    bound_host, bound_port = listener.getsockname()[:2]
    url = f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}/"
    if workers == 1:
        return _run_worker(settings, listener, threads, lambda: announce(url))
    children = [_fork_worker(settings, listener, threads) for _ in range(workers)]
    listener.close()
    announce(url)  # connections wait in the socket's backlog until a worker has loaded the app
    return _supervise(children)


def _fork_worker(settings: Settings, listener: socket.socket, threads: int) -> int:
    """Fork one worker process; returns its pid (the child never returns)."""
    pid = os.fork()
    if pid:
        return pid
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # while the app loads; _run_worker then stops cleanly
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    status = 1
    try:
        status = _run_worker(settings, listener, threads, lambda: None)
    finally:
        sys.stderr.flush()
        os._exit(status)


def _run_worker(settings: Settings, listener: socket.socket, threads: int, ready: Callable[[], None]) -> int:
    """Build the app, call ``ready``, and serve connections from ``listener`` until interrupted."""
    import waitress
    from sqlalchemy.exc import DBAPIError

    from siamese.errors import SigverifyError
    from store.database import database_unavailable
    from webapp import create_app

    try:
        app = create_app(settings)
    except SigverifyError as error:
        print(f"error: {error.code}: {error.message}", file=sys.stderr, flush=True)
        return 2
    except DBAPIError as error:  # e.g. PostgreSQL down at start-up: say so, no traceback
        unavailable = database_unavailable(error)
        if unavailable is None:
            raise
        print(f"error: {unavailable.code}: {unavailable.message} ({unavailable.detail})",
              file=sys.stderr, flush=True)
        return 2
    server: Any = waitress.create_server(app, sockets=[listener], threads=threads, ident=IDENT)
    try:
        for signum in STOP_SIGNALS:  # both end server.run() with KeyboardInterrupt: a clean stop
            signal.signal(signum, signal.default_int_handler)
        ready()
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        for signum in STOP_SIGNALS:  # a second signal (Ctrl-C reaches parent and workers) must not
            signal.signal(signum, signal.SIG_IGN)  # cut the index write short
        server.close()
        app.extensions["sigverify"].close()
    return 0


def _supervise(children: list[int]) -> int:
    """Wait for the workers; stop them all when one exits or when the parent is told to stop."""
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(children, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while children:
        pid, wait_status = os.wait()
        if pid in children:
            children.remove(pid)
        code = os.waitstatus_to_exitcode(wait_status)
        if not stopping:  # a worker died on its own: stop the others, report its status
            status = code if code > 0 else 1
            stopping = True
            _signal_all(children, signal.SIGTERM)
    return status


def _signal_all(children: list[int], signum: int) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
