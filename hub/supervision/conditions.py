"""Record supervisory conditions: open once, restore once, even with several hub workers.

At most one open condition per (gateway, sensor, kind) is enforced by the database (a
partial unique index, see :class:`hub.db.state.Condition`): opening is an INSERT that does
nothing on conflict, restoring an UPDATE guarded by ``state = 'open'``. The caller learns
whether *it* made the change, and only then tells the sinks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from hub.db.dialect import dialect_insert
from hub.db.state import Condition, ConditionKind, ConditionState
from hub.sinks import ConditionChange
from hub.supervision.core import Key


def _match(column: Any, value: str | None) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column.is_(None) if value is None else (column == value)
    return result


def open_keys(session: Session, kinds: set[ConditionKind] | None = None) -> set[Key]:
    stmt = select(Condition.kind, Condition.gateway_id, Condition.sensor_id).where(
        Condition.state == ConditionState.OPEN.value
    )
    if kinds:
        stmt = stmt.where(Condition.kind.in_([k.value for k in kinds]))
    return {(k, g, s) for k, g, s in session.execute(stmt)}


def open_condition(
    session: Session,
    kind: ConditionKind,
    gateway_id: str | None,
    sensor_id: str | None,
    at: dt.datetime,
    detail: str,
) -> ConditionChange | None:
    """Open the condition unless it is open already; the change if this call opened it."""
    stmt = (
        dialect_insert(session, Condition)
        .values(
            gateway_id=gateway_id,
            sensor_id=sensor_id,
            kind=kind.value,
            state=ConditionState.OPEN.value,
            opened_at=at,
            detail=detail,
        )
        .on_conflict_do_nothing()
        .returning(Condition.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    if new_id is None:
        return None
    return ConditionChange(new_id, kind, ConditionState.OPEN, gateway_id, sensor_id, at, detail)


def restore_condition(
    session: Session,
    kind: ConditionKind,
    gateway_id: str | None,
    sensor_id: str | None,
    at: dt.datetime,
    detail: str,
) -> ConditionChange | None:
    """Restore the open condition, if any; the change if this call restored it."""
    stmt = (
        update(Condition)
        .where(
            Condition.kind == kind.value,
            Condition.state == ConditionState.OPEN.value,
            _match(Condition.gateway_id, gateway_id),
            _match(Condition.sensor_id, sensor_id),
        )
        .values(state=ConditionState.RESTORED.value, restored_at=at)
        .returning(Condition.id)
    )
    cid = session.execute(stmt).scalar_one_or_none()
    if cid is None:
        return None
    return ConditionChange(cid, kind, ConditionState.RESTORED, gateway_id, sensor_id, at, detail)
