"""Engines and sessions for the hub database.

``make_engine(url)`` accepts ``sqlite:///path.db`` (the embedded default) and
``postgresql://…`` / ``postgresql+psycopg://…`` (production, psycopg 3). SQLite
connections get WAL, foreign keys, a busy timeout and proper transactions (pysqlite's
own implicit BEGIN handling is switched off and SQLAlchemy emits ``BEGIN`` itself, so
that reads and writes of one transaction see one snapshot and SAVEPOINTs work).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

#: How long a SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000


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
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(u, echo=echo, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(u, echo=echo, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite (see module docstring).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            if engine.url.database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            # FULL, not WAL's usual NORMAL: NORMAL may lose the last commits on power loss,
            # and the hub acks an event (the gateway then forgets it) right after commit.
            cur.execute("PRAGMA synchronous=FULL")
            # 32 MiB page cache (default 2 MiB): telemetry inserts touch one b-tree leaf per
            # series, and the tails of thousands of series must stay cached to be cheap.
            cur.execute("PRAGMA cache_size=-32768")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (objects are handed to other layers)."""
    return sessionmaker(engine, expire_on_commit=False)
