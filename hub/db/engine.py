"""Engines and sessions for the hub database.

``make_engine(url)`` accepts ``sqlite:///path.db`` (the embedded default) and
``postgresql://…`` / ``postgresql+psycopg://…`` (production, psycopg 3). SQLite
connections get WAL, foreign keys, a busy timeout and proper transactions (pysqlite's
own implicit BEGIN handling is switched off and SQLAlchemy emits ``BEGIN`` itself, so
that reads and writes of one transaction see one snapshot and SAVEPOINTs work).

SQLite transactions begin ``IMMEDIATE`` (they take the write lock at ``BEGIN``, waiting
up to the busy timeout for it). A ``DEFERRED`` transaction that reads and then writes
cannot wait: when another writer committed since its snapshot, SQLite refuses the upgrade
at once with "database is locked", and under a steady ingest load an alarm transaction
lost that race over and over (measured: alarms delayed by 10-40 s until the periodic
re-check, ``safehome bench recovery``). Pure readers opt out with :func:`read_only`, so
that they never queue for, or hold, the write lock.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from hub.db.gate import STALE_S, WriteGate

#: How long a SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option naming how a SQLite transaction begins (IMMEDIATE unless told).
SQLITE_BEGIN = "sqlite_begin"
_BEGIN_MODES = {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}
#: The gate a connection holds while in a write transaction (``Connection.info`` key).
_GATE_TOKEN = "safehome_write_gate"
_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()
#: SQLite files hold residents' personal data and token hashes: owner-only.
SQLITE_FILE_MODE = 0o600


def normalize_url(url: str | URL) -> URL:
    """Pick the psycopg 3 driver for PostgreSQL URLs; leave others alone."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str | URL, *, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the hub's connection settings applied."""
    u = normalize_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database not in (None, "", ":memory:") and not str(u.database).startswith("file:"):
            private_sqlite_files(str(u.database))
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(u, echo=echo, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, int(float(connect_args["timeout"]) * 1000))
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(u, echo=echo, **kwargs)


def private_sqlite_files(path: str) -> None:
    """Create the database file owner-only (0600) before SQLite does (it would use the
    umask, typically 0644), and tighten an existing one and its -wal/-shm. SQLite creates
    -wal and -shm with the database file's permissions, so they follow."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, SQLITE_FILE_MODE)
    except FileNotFoundError:
        return  # no such directory: connecting fails with SQLite's own error (answered 503)
    try:
        os.fchmod(fd, SQLITE_FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.chmod(path + suffix, SQLITE_FILE_MODE)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite (see module docstring).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            if engine.url.database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            # FULL, not WAL's usual NORMAL: NORMAL may lose the last commits on power loss,
            # and the hub acks an event (the gateway then forgets it) right after commit.
            cur.execute("PRAGMA synchronous=FULL")
            # 32 MiB page cache (default 2 MiB): telemetry inserts touch one b-tree leaf per
            # series, and the tails of thousands of series must stay cached to be cheap.
            cur.execute("PRAGMA cache_size=-32768")
        finally:
            cur.close()

    # a holder older than the busy timeout is presumed gone: SQLite would have given up on it
    gate = _GATES[engine] = WriteGate(stale_s=min(STALE_S, busy_timeout_ms / 1000))

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        mode = str(conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")).upper()
        if mode not in _BEGIN_MODES:
            raise ValueError(f"{SQLITE_BEGIN}={mode!r}: must be one of {sorted(_BEGIN_MODES)}")
        if mode == "DEFERRED":  # a pure reader: never waits for writers
            conn.exec_driver_sql("BEGIN DEFERRED")
            return
        # writers of this process take SQLite's lock most urgent first (hub/db/gate.py)
        token = gate.acquire()
        try:
            conn.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            gate.release(token)
            raise
        conn.info[_GATE_TOKEN] = token

    # Released once SQLite's COMMIT/ROLLBACK returned (the "commit" event fires before it:
    # the next writer would find the lock still taken and sleep in the busy handler). The
    # dialect of this engine gets it, so the pool's rollback of a returned connection
    # releases too. The token lives in the pooled connection's info (= Connection.info).
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def released(end: Any) -> Any:
        def do_end(dbapi_conn: Any) -> None:
            try:
                end(dbapi_conn)
            finally:
                try:
                    token = dbapi_conn.info.pop(_GATE_TOKEN, None)
                except (AttributeError, NotImplementedError):  # the first connect's own probe
                    token = None
                if token is not None:
                    gate.release(token)

        return do_end

    dialect.do_commit = released(commit)  # type: ignore[method-assign]
    dialect.do_rollback = released(rollback)  # type: ignore[method-assign]


def write_gate(engine: Engine) -> WriteGate | None:
    """The gate of a SQLite engine made by :func:`make_engine` (None for others)."""
    return _GATES.get(engine)


def read_only(session: Session) -> Session:
    """Mark ``session``'s next transaction as a pure read: on SQLite it begins ``DEFERRED``
    and takes no write lock (a write in it may then fail with "database is locked").
    Call it before the session's first statement, instead of ``session.begin()`` (it
    begins the transaction); a no-op on PostgreSQL."""
    session.connection(execution_options={SQLITE_BEGIN: "DEFERRED"})
    return session


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (objects are handed to other layers)."""
    return sessionmaker(engine, expire_on_commit=False)
