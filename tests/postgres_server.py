"""A private PostgreSQL server for fault tests: its own cluster in a temporary directory, its own port.

It never touches a shared server (such as the one on 5432 that ``SIGVERIFY_TEST_DATABASE_URL`` names):
``initdb`` makes a new cluster, ``pg_ctl`` starts and stops only that one. PostgreSQL refuses to run
as root, so as root the cluster belongs to the ``postgres`` system user and its commands run through
``runuser``. CI machines have the binaries (Debian's postgresql package); elsewhere the tests that need
them are skipped with that reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SYSTEM_USER = "postgres"


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` that has initdb and pg_ctl, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found and (found[-1].parent / "pg_ctl").exists() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivatePostgres:
    """A PostgreSQL cluster in ``folder`` listening on 127.0.0.1:``port`` (trust auth, user postgres)."""

    def __init__(self, binaries: Path, folder: Path, run_as: str | None) -> None:
        self.binaries, self.folder, self.run_as = binaries, folder, run_as
        self.data = folder / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        """Run one PostgreSQL program (as the system user when we are root); fail with its output."""
        command = [str(self.binaries / program), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=self.folder)
        if done.returncode:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}{self.log()}")

    def log(self) -> str:
        """The server log so far."""
        log = self.folder / "server.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def initialise(self) -> None:
        """Create the cluster (no fsync: it is thrown away)."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
                  "-E", "UTF8", "--locale=C")

    def start(self) -> None:
        """Start the server on its port (socket files in the private folder) and wait until it answers."""
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=40")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options,
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients, roll back their transactions)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def new_database(self, name: str) -> str:
        """Create the database ``name`` and return its URL."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def running(self) -> bool:
        """True while the server's pid file exists."""
        return (self.data / "postmaster.pid").exists()


@contextmanager
def private_postgres_or_skip() -> Iterator[PrivatePostgres]:
    """A started private PostgreSQL, stopped and deleted afterwards; skips when the binaries are absent."""
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not under /usr/lib/postgresql; CI has them")
    run_as = None
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            pytest.skip(f"running as root and there is no {SYSTEM_USER!r} user to run PostgreSQL as")
        run_as = SYSTEM_USER
    folder = Path(tempfile.mkdtemp(prefix="sigverify-pg-"))  # not under pytest's root-only tmp dirs
    if run_as:
        os.chown(folder, account.pw_uid, account.pw_gid)
    server = PrivatePostgres(binaries, folder, run_as)
    try:
        server.initialise()
        server.start()
        yield server
    finally:
        if server.running():
            server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
