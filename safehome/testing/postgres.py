"""Throwaway PostgreSQL databases for tests.

:func:`postgres_server` finds a server to use, in this order:

1. ``SAFEHOME_TEST_PG_ADMIN_URL`` (a libpq/SQLAlchemy URL of a role that may CREATE DATABASE);
2. the server on 127.0.0.1:5432 if it answers and lets ``postgres`` in without a password
   (Debian's default cluster with ``trust`` on loopback, as on the CI machines);
3. otherwise a cluster of its own: ``initdb`` in a temporary directory on a free port (run
   as user ``postgres`` when we are root, because initdb refuses root), stopped and
   deleted at the end.

:meth:`PostgresServer.create_database` then creates a database with a unique name and
:meth:`PostgresServer.drop_database` drops it (terminating leftover connections first).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

ADMIN_URL_ENV = "SAFEHOME_TEST_PG_ADMIN_URL"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _pg_bin(name: str) -> str:
    """A PostgreSQL server binary (Debian keeps them out of PATH), newest version first."""
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install Debian's postgresql (make setup)")
    return found


def _libpq_url(url: str) -> str:
    """SQLAlchemy ``postgresql+psycopg://`` → plain libpq ``postgresql://``."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@dataclass
class PostgresServer:
    """A reachable server and an admin URL (libpq form) on it."""

    admin_url: str
    own_cluster: Path | None = None
    created: list[str] = field(default_factory=list)

    def create_database(self, prefix: str = "safehome_test") -> str:
        """Create a database with a unique name; return its SQLAlchemy URL (psycopg 3)."""
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        base, _, _ = self.admin_url.rpartition("/")
        return _sqlalchemy_url(f"{base}/{name}")

    def drop_database(self, url: str) -> None:
        name = url.rpartition("/")[2].split("?")[0]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        for name in list(self.created):
            base, _, _ = self.admin_url.rpartition("/")
            self.drop_database(f"{base}/{name}")
        if self.own_cluster is not None:
            _stop_cluster(self.own_cluster)


def _can_login(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _run_as_postgres(args: list[str]) -> list[str]:
    """Prefix ``args`` so that they run as user postgres when we are root."""
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser")
    if runuser is not None:
        return [runuser, "-u", "postgres", "--", *args]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(args)]


def _start_cluster(timeout: float = 60.0) -> tuple[Path, int]:
    """initdb + pg_ctl start on a free loopback port; the socket lives in the data dir."""
    workdir = Path(tempfile.mkdtemp(prefix="safehome-pg-"))
    datadir = workdir / "data"
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    subprocess.run(
        _run_as_postgres(
            [
                _pg_bin("initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=timeout,
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _run_as_postgres(
            [_pg_bin("pg_ctl"), "-D", str(datadir), "-l", str(workdir / "log"), "-o", options, "-w", "start"]
        ),
        check=True,
        capture_output=True,
        timeout=timeout,
    )
    deadline = time.monotonic() + timeout
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    while not _can_login(url):
        if time.monotonic() > deadline:
            raise TimeoutError(f"own PostgreSQL cluster in {workdir} did not accept logins in {timeout}s")
        time.sleep(0.05)
    return workdir, port


def _stop_cluster(workdir: Path) -> None:
    subprocess.run(
        _run_as_postgres([_pg_bin("pg_ctl"), "-D", str(workdir / "data"), "-m", "immediate", "-w", "stop"]),
        check=False,
        capture_output=True,
        timeout=60,
    )
    shutil.rmtree(workdir, ignore_errors=True)


def find_or_start_server() -> PostgresServer:
    env_url = os.environ.get(ADMIN_URL_ENV)
    if env_url:
        return PostgresServer(admin_url=_libpq_url(env_url))
    default = "postgresql://postgres@127.0.0.1:5432/postgres"
    if _port_answers("127.0.0.1", 5432) and _can_login(default):
        return PostgresServer(admin_url=default)
    workdir, port = _start_cluster()
    return PostgresServer(admin_url=f"postgresql://postgres@127.0.0.1:{port}/postgres", own_cluster=workdir)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = find_or_start_server()
    try:
        yield server
    finally:
        server.close()
