"""The audit log: who did what, to what, when, from where (docs/api.md "Audit").

:func:`record` adds one entry in the caller's transaction, so an entry exists exactly when
the change it describes was committed. Entries are never changed or removed: there is no
code path for it, and a trigger refuses UPDATE and DELETE on the table
(hub/audit/models.py, migration 0012).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from hub.audit.models import AuditEntry

__all__ = ["AuditEntry", "record"]


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    source: str = "",
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Add an entry to ``session`` (committed, or rolled back, with the caller's change)."""
    entry = AuditEntry(
        at=at or dt.datetime.now(dt.UTC),
        actor=actor[:200],
        action=action[:64],
        target=target[:200],
        source=source[:100],
        detail=detail,
    )
    session.add(entry)
    return entry
