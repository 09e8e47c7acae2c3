"""The audit log table: append-only (no UPDATE or DELETE path in the code; a trigger refuses
both on PostgreSQL and on SQLite)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DDL, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime]
    #: who: a user ("Li Na [user lina]"), a key ("family app [key 0a1b…]"), "hub", "cli"
    actor: Mapped[str] = mapped_column(String(200))
    #: what: ``alarm.acknowledge``, ``key.create``, ``login.failed``, ``resident.read`` …
    action: Mapped[str] = mapped_column(String(64))
    #: on what: ``alarm:<id>``, ``key:<id>``, ``user:<name>``, ``home:<id>`` …
    target: Mapped[str] = mapped_column(String(200), default="")
    #: from where: the client's address, or ``cli`` / ``hub``
    source: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor", "actor"),
        Index("ix_audit_log_action", "action"),
        Index("ix_audit_log_target", "target"),
    )


#: The same statements as migration 0012, for databases made from the models (tests).
PG_APPEND_ONLY = (
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END
$$ LANGUAGE plpgsql""",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log"
    " FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)
SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
)
for _dialect, _statements in (("postgresql", PG_APPEND_ONLY), ("sqlite", SQLITE_APPEND_ONLY)):
    for _sql in _statements:
        _ddl = DDL(_sql)  # type: ignore[no-untyped-call]
        event.listen(AuditEntry.__table__, "after_create", _ddl.execute_if(dialect=_dialect))
