"""Errors of the hub's database layer.

``DatabaseError``
  ├── ``MigrationError``   an Alembic upgrade failed (bad URL, unreachable server, broken chain)
  └── ``StoreError``       a write to the event store failed (the caller must not ack)
"""

from __future__ import annotations


class DatabaseError(Exception):
    """Base of every error raised by ``hub.db``."""


class MigrationError(DatabaseError):
    pass


class StoreError(DatabaseError):
    pass
