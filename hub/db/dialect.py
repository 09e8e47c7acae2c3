"""``INSERT … ON CONFLICT`` for the database at hand: the one place that picks the dialect's
insert (PostgreSQL or SQLite, the two databases the hub runs on)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.db.errors import StoreError


def dialect_insert(bind: Session | Engine | Connection, table: Any) -> postgresql.Insert | sqlite.Insert:
    """``insert(table)`` of ``bind``'s database, with ``on_conflict_do_nothing`` /
    ``on_conflict_do_update``; raises :class:`StoreError` on any other database."""
    name = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise StoreError(f"the hub does not support the {name!r} database")
