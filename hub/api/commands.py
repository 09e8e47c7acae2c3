"""``/api/v1/gateways/{id}/commands``: send ``selftest``, ``silence_siren``,
``report_status`` or ``reload_config`` to a gateway (docs/protocol.md 5.3) and read what it
answered (4.4; ingest records the answer on the command, hub/db/commands.py).

The command is recorded first (``pending``), then published on the gateway's ``cmd`` topic
(QoS 1): ``sent`` once the broker took it, ``unsent`` (and 503) when it could not; the
gateway's result makes it ``answered``. A command not answered by ``expires_at`` reads as
``expired`` (the gateway refuses to run it after that, when its clock is synced).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.api.answers import BAD_BODY, problems
from hub.api.auth import Context, SessionDep, audit, require
from hub.api.context import ApiContext
from hub.api.errors import CommandNotSent
from hub.api.gateways import scoped_gateway
from hub.api.problems import ApiProblem
from hub.api.scopes import GATEWAYS_COMMAND, REGISTRY_READ
from hub.api.tokens import Principal
from hub.db.commands import CommandState, GatewayCommand
from hub.db.engine import read_only
from protocols import Command, CommandName, new_event_id

router = APIRouter(tags=["gateways"])
NOT_FOUND = "no such command of this gateway"
Commander = Annotated[Principal, Depends(require(GATEWAYS_COMMAND))]
Reader = Annotated[Principal, Depends(require(REGISTRY_READ))]
Scalar = str | int | float | bool | None


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CommandName
    args: Annotated[
        dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")], Scalar], Field(max_length=16)
    ] = {}
    expires_in_s: Annotated[int, Field(ge=10, le=3600)] = Field(
        default=300, description="the gateway must not run it later than this after it was issued"
    )


class CommandOut(BaseModel):
    id: str
    gateway_id: str
    name: str
    args: dict[str, Any]
    state: str = Field(description="pending, sent, unsent, answered or expired")
    issued_by: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    sent_at: dt.datetime | None
    answered_at: dt.datetime | None
    ok: bool | None = Field(description="the gateway's answer: did it succeed (null: no answer yet)")
    detail: str
    data: dict[str, Any] | None


def out(c: GatewayCommand, now: dt.datetime) -> CommandOut:
    state = c.state
    if state in (CommandState.PENDING, CommandState.SENT) and now >= c.expires_at:
        state = "expired"
    return CommandOut(
        id=c.id,
        gateway_id=c.gateway_id,
        name=c.name,
        args=c.args,
        state=state,
        issued_by=c.issued_by,
        issued_at=c.issued_at,
        expires_at=c.expires_at,
        sent_at=c.sent_at,
        answered_at=c.answered_at,
        ok=c.ok,
        detail=c.detail,
        data=c.data,
    )


def _record(
    ctx: ApiContext, p: Principal, gateway_id: str, body: CommandIn, now: dt.datetime
) -> GatewayCommand:
    with ctx.sessions() as s, s.begin():
        scoped_gateway(s, p, gateway_id)  # 404 outside the region
        row = GatewayCommand(
            id=new_event_id(int(now.timestamp() * 1000)),
            gateway_id=gateway_id,
            name=body.name.value,
            args=dict(body.args),
            issued_by=p.actor,
            issued_at=now,
            expires_at=now + dt.timedelta(seconds=body.expires_in_s),
            state=CommandState.PENDING.value,
            detail="",
        )
        s.add(row)
        audit(
            s, p, "gateway.command", f"gateway:{gateway_id}", {"command_id": row.id, "name": row.name}, at=now
        )
    return row


def _mark(
    ctx: ApiContext, command_id: str, state: CommandState, at: dt.datetime | None, detail: str = ""
) -> None:
    with ctx.sessions() as s, s.begin():
        values: dict[str, Any] = {"state": state.value}
        if at is not None:
            values["sent_at"] = at
        if detail:
            values["detail"] = detail
        # the answer may already be in (a fast gateway): never step back from answered
        s.execute(
            update(GatewayCommand)
            .where(GatewayCommand.id == command_id, GatewayCommand.answered_at.is_(None))
            .values(**values)
        )


@router.post(
    "/gateways/{gateway_id}/commands",
    response_model=CommandOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(
        {
            400: BAD_BODY,
            404: "no such gateway in the caller's region",
            503: "the broker did not take the command (recorded as `unsent`)",
        }
    ),
)
async def send_command(gateway_id: str, body: CommandIn, p: Commander, ctx: Context) -> CommandOut:
    """Record the command and publish it; 202 once the broker took it. Poll
    ``GET …/commands/{command_id}`` for the gateway's answer."""
    if ctx.commands is None:
        raise ApiProblem(503, "broker_unavailable", "this hub worker cannot send gateway commands")
    now = ctx.clock.now()
    # no SessionDep here: each step below is a short transaction of its own in a worker
    # thread, and none is held while the broker takes the command
    row = await run_in_threadpool(_record, ctx, p, gateway_id, body, now)
    cmd = Command(
        gw=gateway_id,
        id=row.id,
        name=row.name,
        ts=int(now.timestamp() * 1000),
        expires=int(row.expires_at.timestamp() * 1000),
        args=row.args,
    )
    try:
        await ctx.commands.send(cmd)
    except CommandNotSent as exc:
        await run_in_threadpool(_mark, ctx, row.id, CommandState.UNSENT, None, str(exc)[:500])
        raise ApiProblem(503, "broker_unavailable", f"command {row.id} not sent: {exc}") from exc
    await run_in_threadpool(_mark, ctx, row.id, CommandState.SENT, ctx.clock.now())
    return await run_in_threadpool(_read_alone, ctx, p, gateway_id, row.id)


def _read(s: Session, p: Principal, gateway_id: str, command_id: str, now: dt.datetime) -> CommandOut:
    scoped_gateway(read_only(s), p, gateway_id)
    row = s.scalars(
        select(GatewayCommand).where(GatewayCommand.id == command_id, GatewayCommand.gateway_id == gateway_id)
    ).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return out(row, now)


def _read_alone(ctx: ApiContext, p: Principal, gateway_id: str, command_id: str) -> CommandOut:
    with ctx.sessions() as s:
        return _read(s, p, gateway_id, command_id, ctx.clock.now())


@router.get(
    "/gateways/{gateway_id}/commands/{command_id}",
    response_model=CommandOut,
    responses=problems({404: "no such gateway in the caller's region, or no such command of it"}),
)
def get_command(gateway_id: str, command_id: str, p: Reader, ctx: Context, s: SessionDep) -> CommandOut:
    return _read(s, p, gateway_id, command_id, ctx.clock.now())


@router.get(
    "/gateways/{gateway_id}/commands",
    response_model=list[CommandOut],
    responses=problems({404: "no such gateway in the caller's region"}),
)
def list_commands(
    gateway_id: str, p: Reader, ctx: Context, s: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[CommandOut]:
    """The gateway's latest commands, newest first."""
    now = ctx.clock.now()
    scoped_gateway(read_only(s), p, gateway_id)
    rows = s.scalars(
        select(GatewayCommand)
        .where(GatewayCommand.gateway_id == gateway_id)
        .order_by(GatewayCommand.issued_at.desc(), GatewayCommand.id.desc())
        .limit(limit)
    )
    return [out(r, now) for r in rows]
