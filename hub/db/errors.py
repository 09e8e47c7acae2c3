"""Errors of the hub's database layer.

``DatabaseError``
  ├── ``MigrationError``    an Alembic upgrade failed (bad URL, unreachable server, broken chain)
  ├── ``StoreError``        a write to the event store failed (the caller must not ack)
  ├── ``Conflict``          a write lost to a concurrent one (a fresh read resolves it)
  └── ``RetriesExhausted``  ``hub.db.tx.in_transaction`` lost every attempt (a locked or dead database)
"""

from __future__ import annotations


class DatabaseError(Exception):
    """Base of every error raised by ``hub.db``."""


class MigrationError(DatabaseError):
    pass


class StoreError(DatabaseError):
    pass


class Conflict(DatabaseError):
    """A write lost to a concurrent one (a version check failed): ``hub.db.tx.in_transaction``
    retries it from a fresh read."""


class RetriesExhausted(DatabaseError):
    """Every attempt of ``hub.db.tx.in_transaction`` lost a race or found the database locked."""
