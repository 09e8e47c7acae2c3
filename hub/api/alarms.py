"""``/api/v1/alarms``: list (filters, cursor pagination), detail with history, and one POST
operation per lifecycle step (acknowledge, dispatch, arrive, resolve, review)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.alarms.engine.actions import apply_action
from hub.alarms.errors import ConcurrentUpdate, TransitionRefused
from hub.alarms.lifecycle import Action, Outcome
from hub.alarms.store.models import Alarm
from hub.api.auth import Context, SessionDep, alarm_scope, audit, require
from hub.api.context import ApiContext
from hub.api.homes import home_card
from hub.api.models import IdempotencyKey
from hub.api.problems import MEDIA_TYPE, Problem, invalid_field, problem
from hub.api.schemas import (
    AcknowledgeIn,
    AlarmDetail,
    AlarmPublic,
    AlarmsPage,
    ArriveIn,
    DeliverySummary,
    DispatchIn,
    Me,
    ResolveIn,
    ReviewIn,
    StepIn,
)
from hub.api.scopes import ALARMS_READ, ALARMS_REVIEW, ALARMS_WRITE, RESIDENTS_READ
from hub.api.tokens import Principal
from hub.db.engine import read_only
from hub.db.tx import in_transaction
from hub.notify.models import Notification

router = APIRouter(tags=["alarms"])
MAX_PAGE = 200
NOT_FOUND = "no such alarm"
BAD_CURSOR = "not a cursor this API gave out (pass next_cursor as it came)"
Reader = Annotated[Principal, Depends(require(ALARMS_READ))]
Writer = Annotated[Principal, Depends(require(ALARMS_WRITE))]
Reviewer = Annotated[Principal, Depends(require(ALARMS_REVIEW))]


def _cursor(alarm_id: str) -> str:
    return base64.urlsafe_b64encode(alarm_id.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str:
    try:
        value = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise invalid_field(("query", "cursor"), BAD_CURSOR) from exc
    if len(value) != 36:
        raise invalid_field(("query", "cursor"), BAD_CURSOR)
    return value


def scoped_alarm(s: Session, p: Principal, alarm_id: str) -> Alarm:
    alarm = s.scalars(select(Alarm).where(Alarm.id == alarm_id, alarm_scope(p))).first()
    if alarm is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return alarm


def detail_of(s: Session, alarm: Alarm) -> AlarmDetail:
    d = AlarmDetail.model_validate(alarm)
    rows = s.scalars(
        select(Notification).where(Notification.alarm_id == alarm.id).order_by(Notification.created_at)
    ).all()
    d.notifications = [
        DeliverySummary(channel=n.channel, role=n.role, tier=n.tier, status=n.status, attempts=n.attempts)
        for n in rows
    ]
    return d


@router.get("/me", response_model=Me)
def me(p: Annotated[Principal, Depends(require())]) -> Me:
    """Who the credential is: kind (key or user), role, region, scopes, expiry."""
    return Me(
        token_id=p.token_id,
        kind=p.kind,
        role=p.role,
        region=p.region,
        name=p.name,
        username=p.username,
        scopes=sorted(p.scopes),
        expires_at=p.expires_at,
    )


@router.get("/alarms", response_model=AlarmsPage)
def list_alarms(
    p: Reader,
    s: SessionDep,
    state: Annotated[list[str] | None, Query()] = None,
    alarm_class: Annotated[list[str] | None, Query()] = None,
    kind: Annotated[list[str] | None, Query()] = None,
    home_id: str | None = None,
    gateway_id: str | None = None,
    workstation_id: str | None = None,
    open: bool | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: str | None = None,
) -> AlarmsPage:
    """Newest first. Every filter narrows the caller's own region, never widens it."""
    q = select(Alarm).where(alarm_scope(p))
    if state:
        q = q.where(Alarm.state.in_(state))
    if alarm_class:
        q = q.where(Alarm.alarm_class.in_(alarm_class))
    if kind:
        q = q.where(Alarm.kind.in_(kind))
    for column, value in (
        (Alarm.home_id, home_id),
        (Alarm.gateway_id, gateway_id),
        (Alarm.workstation_id, workstation_id),
    ):
        if value is not None:
            q = q.where(column == value)
    if open is not None:
        q = q.where(Alarm.open_key.is_not(None) if open else Alarm.open_key.is_(None))
    for name, bound, op in (("since", since, "ge"), ("until", until, "lt")):
        if bound is not None:
            if bound.tzinfo is None:
                raise invalid_field(("query", name), "needs a timezone (e.g. Z)")
            q = q.where(Alarm.raised_at >= bound if op == "ge" else Alarm.raised_at < bound)
    if cursor:
        q = q.where(Alarm.id < _uncursor(cursor))
    read_only(s)
    rows = s.scalars(q.order_by(Alarm.id.desc()).limit(limit + 1)).all()
    items = [AlarmPublic.model_validate(a) for a in rows[:limit]]
    nxt = _cursor(items[-1].id) if len(rows) > limit else None
    return AlarmsPage(items=items, next_cursor=nxt)


@router.get(
    "/alarms/{alarm_id}",
    response_model=AlarmDetail,
    responses={
        404: {
            "model": Problem,
            "content": {MEDIA_TYPE: {}},
            "description": "no such alarm in the caller's region",
        }
    },
)
def get_alarm(alarm_id: str, p: Reader, ctx: Context, s: SessionDep) -> AlarmDetail:
    """The alarm, its history, deliveries and its home's card (hub/api/homes.py: personal
    data only with ``residents:read``, and then audited)."""
    if not p.allows(RESIDENTS_READ):
        read_only(s)  # nothing to record: no write lock on SQLite
    alarm = scoped_alarm(s, p, alarm_id)
    d = detail_of(s, alarm)
    d.home = home_card(s, p, alarm.home_id, ctx.clock.now())
    s.commit()
    return d


def _request_hash(alarm_id: str, action: str, body: StepIn) -> str:
    # every step's fields, absent ones as null: a key stored before the steps had their own
    # bodies still matches its repeat
    fields = {"note": "", "responder": None, "outcome": None} | body.model_dump(mode="json")
    raw = orjson.dumps([alarm_id, action, fields], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": description}


STEP_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: _problem("the credential lacks the step's scope (alarms:write; review: alarms:review)"),
    404: _problem("no such alarm in the caller's region"),
    409: _problem("step refused by the alarm's state (`error` says why, `state` is the state)"),
}
IdempotencyKeyHeader = Annotated[
    str,
    Header(
        min_length=1,
        max_length=200,
        description="one per intended step: a repeat with the same key and body returns the first answer",
    ),
]


def _step(
    action: Action, alarm_id: str, body: StepIn, p: Principal, ctx: ApiContext, idempotency_key: str
) -> JSONResponse:
    """Take one lifecycle step. Repeating a request with the same ``Idempotency-Key`` returns
    the first answer and changes nothing; the same key with a different request is refused."""
    h = _request_hash(alarm_id, action.value, body)

    def work(s: Session) -> tuple[int, dict[str, Any]]:
        seen = s.scalars(
            select(IdempotencyKey).where(
                IdempotencyKey.token_id == p.token_id, IdempotencyKey.key == idempotency_key
            )
        ).first()
        if seen is not None:
            if seen.request_hash != h:
                raise invalid_field(
                    ("header", "idempotency-key"),
                    "already used for a different request",
                    "idempotency_key_reused",
                )
            return seen.status_code, seen.response
        alarm = scoped_alarm(s, p, alarm_id)
        code: int
        before = alarm.state
        try:
            apply_action(
                s,
                alarm,
                action,
                p.actor,
                ctx.clock.now(),
                by=p.region.replace(":", " "),
                note=body.note,
                outcome=Outcome(body.outcome) if isinstance(body, ResolveIn) else None,
                responder=getattr(body, "responder", None),
            )
            audit(
                s,
                p,
                f"alarm.{action.value}",
                f"alarm:{alarm.id}",
                {"from": before, "to": alarm.state, "outcome": alarm.outcome},
                ctx.clock.now(),
            )
            code, payload = 200, detail_of(s, alarm).model_dump(mode="json")
        except ConcurrentUpdate:
            raise  # retried from a fresh read by in_transaction
        except TransitionRefused as exc:
            code = 409
            refused = problem(
                409, exc.detail, exc.reason, state=exc.state, instance=f"/api/v1/alarms/{alarm_id}"
            )
            payload = refused.model_dump(mode="json", exclude_none=True)
        s.add(
            IdempotencyKey(
                token_id=p.token_id,
                key=idempotency_key,
                request_hash=h,
                status_code=code,
                response=payload,
                created_at=ctx.clock.now(),
            )
        )
        return code, payload

    code, payload = in_transaction(ctx.sessions, work)
    if code == 200:
        ctx.notifications_committed()
    return JSONResponse(payload, status_code=code, media_type=None if code == 200 else MEDIA_TYPE)


# One operation per step, each with its own body (OpenAPI shows which fields each needs);
# the URLs are those of the single ``/{action}`` route they replace.


@router.post(
    "/alarms/{alarm_id}/acknowledge",
    operation_id="acknowledge_alarm",
    response_model=AlarmDetail,
    responses=STEP_RESPONSES,
)
def acknowledge(
    alarm_id: str,
    body: AcknowledgeIn,
    p: Writer,
    ctx: Context,
    idempotency_key: IdempotencyKeyHeader,
) -> JSONResponse:
    """Take the alarm (raised or notified → acknowledged); stops its escalation and tells the
    home that help is on the way."""
    return _step(Action.ACKNOWLEDGE, alarm_id, body, p, ctx, idempotency_key)


@router.post(
    "/alarms/{alarm_id}/dispatch",
    operation_id="dispatch_alarm",
    response_model=AlarmDetail,
    responses=STEP_RESPONSES,
)
def dispatch(
    alarm_id: str, body: DispatchIn, p: Writer, ctx: Context, idempotency_key: IdempotencyKeyHeader
) -> JSONResponse:
    """Send a responder (acknowledged → dispatched); ``responder`` says who goes."""
    return _step(Action.DISPATCH, alarm_id, body, p, ctx, idempotency_key)


@router.post(
    "/alarms/{alarm_id}/arrive",
    operation_id="arrive_alarm",
    response_model=AlarmDetail,
    responses=STEP_RESPONSES,
)
def arrive(
    alarm_id: str, body: ArriveIn, p: Writer, ctx: Context, idempotency_key: IdempotencyKeyHeader
) -> JSONResponse:
    """The responder is at the door (dispatched → on_site)."""
    return _step(Action.ARRIVE, alarm_id, body, p, ctx, idempotency_key)


@router.post(
    "/alarms/{alarm_id}/resolve",
    operation_id="resolve_alarm",
    response_model=AlarmDetail,
    responses=STEP_RESPONSES,
)
def resolve(
    alarm_id: str, body: ResolveIn, p: Writer, ctx: Context, idempotency_key: IdempotencyKeyHeader
) -> JSONResponse:
    """Record what it was (acknowledged, dispatched or on_site → resolved); ``outcome`` is
    required."""
    return _step(Action.RESOLVE, alarm_id, body, p, ctx, idempotency_key)


@router.post(
    "/alarms/{alarm_id}/review",
    operation_id="review_alarm",
    response_model=AlarmDetail,
    responses=STEP_RESPONSES,
)
def review(
    alarm_id: str, body: ReviewIn, p: Reviewer, ctx: Context, idempotency_key: IdempotencyKeyHeader
) -> JSONResponse:
    """Supervisors: the case is checked and closed (resolved → reviewed)."""
    return _step(Action.REVIEW, alarm_id, body, p, ctx, idempotency_key)
