"""``/api/v1/audit``: the audit log for auditors (``audit:read``), newest first, filtered by
actor, action, target and time; ``/api/v1/audit.csv`` exports the same selection as CSV
(the export is itself audited)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, select

from hub.api.auth import Context, SessionDep, audit, require
from hub.api.problems import invalid_field
from hub.api.scopes import AUDIT_READ
from hub.api.tokens import Principal
from hub.audit import AuditEntry
from hub.db.engine import read_only

router = APIRouter(tags=["audit"])
Auditor = Annotated[Principal, Depends(require(AUDIT_READ))]
MAX_PAGE = 1000
MAX_EXPORT = 1_000_000
CSV_COLUMNS = ("id", "at", "actor", "action", "target", "source", "detail")


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: dt.datetime
    actor: str = Field(description="who: a user, a key, 'cli' or 'hub'")
    action: str = Field(description="what, e.g. alarm.acknowledge, key.create, login.failed, resident.read")
    target: str = Field(description="on what, e.g. alarm:<id>, key:<id>, user:<name>, home:<id>")
    source: str = Field(description="from where: the client's address, or 'cli'")
    detail: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEntryPublic]
    next_cursor: int | None = Field(description="Pass as ?cursor= for the next (older) page; null at the end")


def _cell(value: str) -> str:
    """A spreadsheet must not read a cell as a formula (a user name is attacker-chosen)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _query(
    actor: str | None,
    action: list[str] | None,
    target: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> Select[AuditEntry]:
    q = select(AuditEntry)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        prefixes = [a[:-1] for a in action if a.endswith("*")]
        exact = [a for a in action if not a.endswith("*")]
        cond: ColumnElement[bool] | None = AuditEntry.action.in_(exact) if exact else None
        for pre in prefixes:
            c = AuditEntry.action.startswith(pre, autoescape=True)
            cond = c if cond is None else cond | c
        if cond is not None:
            q = q.where(cond)
    if target:
        q = q.where(AuditEntry.target == target)
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise invalid_field(("query", name), "needs a timezone (e.g. Z)")
    if since is not None:
        q = q.where(AuditEntry.at >= since)
    if until is not None:
        q = q.where(AuditEntry.at < until)
    return q


ActorQ = Annotated[str | None, Query(max_length=200, description="exactly as recorded")]
ActionQ = Annotated[list[str] | None, Query(description="repeatable; 'login.*' matches a prefix")]
TargetQ = Annotated[str | None, Query(max_length=200, description="e.g. alarm:<id>, home:<id>")]


@router.get("/audit", response_model=AuditPage)
def list_audit(
    p: Auditor,
    s: SessionDep,
    actor: ActorQ = None,
    action: ActionQ = None,
    target: TargetQ = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,  # a 64-bit id: larger is a 422, not a 500
) -> AuditPage:
    """Newest first: who did what, to what, when, from where."""
    q = _query(actor, action, target, since, until)
    if cursor is not None:
        q = q.where(AuditEntry.id < cursor)
    rows = read_only(s).scalars(q.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    items = [AuditEntryPublic.model_validate(r) for r in rows[:limit]]
    return AuditPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


@router.get(
    "/audit.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "the selection as CSV, oldest first"}},
)
def export_audit(
    p: Auditor,
    ctx: Context,
    s: SessionDep,
    actor: ActorQ = None,
    action: ActionQ = None,
    target: TargetQ = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> StreamingResponse:
    """The selection as CSV (columns id, at, actor, action, target, source, detail as JSON),
    oldest first, at most a million rows."""
    q = _query(actor, action, target, since, until).order_by(AuditEntry.id).limit(MAX_EXPORT)
    filters = {
        k: v
        for k, v in {
            "actor": actor,
            "action": action,
            "target": target,
            "since": since and since.isoformat(),
            "until": until and until.isoformat(),
        }.items()
        if v
    }
    with s.begin():
        audit(s, p, "audit.export", "audit", filters or None, ctx.clock.now())

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)
        with ctx.sessions() as rs:  # its own session: the rows are read while the answer streams
            for e in read_only(rs).execute(q.execution_options(yield_per=1000)).scalars():
                detail = orjson.dumps(e.detail).decode() if e.detail is not None else ""
                w.writerow(
                    (
                        e.id,
                        e.at.isoformat(),
                        *(_cell(v) for v in (e.actor, e.action, e.target, e.source)),
                        detail,
                    )
                )
                if buf.tell() > 64 * 1024:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        rows(), media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="audit.csv"'}
    )
