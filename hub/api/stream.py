"""``/api/v1/alarms/stream``: every alarm event of the caller's region as Server-Sent
Events, read from the alarms' history (:mod:`hub.alarms.feed`), so any hub worker serves
the same stream.

Each event is one history line (``alarm.raised``, ``alarm.acknowledged``, …,
``alarm.escalated``) with the alarm's per-alarm ``seq``; its SSE ``id`` is the line's
global id. A client that reconnects with ``Last-Event-ID`` (browsers' EventSource do) gets
every line after it, from whichever worker it reaches; without one it starts at the newest.
This worker's console push only wakes the stream early; other workers' lines arrive within
``POLL_S``.

A stream lives no longer than its token: it re-reads the token every
``ApiContext.token_recheck_s`` and ends, with a last ``event: closed`` naming the reason,
once the token is revoked or expired (within 5 s by default).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, status
from fastapi.responses import StreamingResponse

from hub.alarms.feed import Tail, head
from hub.api.auth import Context, alarm_scope, credential_refusal, require
from hub.api.context import ApiContext
from hub.api.problems import MEDIA_TYPE, UNAVAILABLE, Problem
from hub.api.scopes import ALARMS_READ
from hub.api.tokens import Principal
from hub.db.engine import read_only

log = logging.getLogger(__name__)
router = APIRouter(tags=["stream"])
KEEPALIVE_S = 15.0
#: how often a stream looks for other workers' lines (this worker's wake it at once)
POLL_S = 1.0


def _refusal(ctx: ApiContext, p: Principal) -> str | None:
    try:
        with ctx.sessions() as s:
            return credential_refusal(read_only(s), p, ctx.clock.now())
    except UNAVAILABLE as exc:
        # Revoking needs the database too: while it is unreachable no revocation can be
        # committed, so the operator's console stays connected rather than going dark.
        log.warning("event stream of token %s: token not re-checked: %s", p.token_id, type(exc).__name__)
        return None


def closed(reason: str) -> bytes:
    return b"event: closed\ndata: " + orjson.dumps({"reason": reason}) + b"\n\n"


def _start(ctx: ApiContext, last_event_id: str | None) -> int:
    if last_event_id is not None:
        try:
            position = int(last_event_id)
        except ValueError:
            position = -1
        if position < 0:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"Last-Event-ID must be an event id this stream sent (a whole number >= 0), got {last_event_id[:40]!r}",
            )
        return position
    with ctx.sessions() as s:
        return head(read_only(s))


def _poll(ctx: ApiContext, tail: Tail, p: Principal) -> list[tuple[int, dict[str, object]]]:
    with ctx.sessions() as s:
        return tail.poll(read_only(s), alarm_scope(p))


def frame(event_id: int, item: dict[str, object]) -> bytes:
    return (
        b"id: "
        + str(event_id).encode()
        + b"\nevent: "
        + str(item.get("event", "alarm")).encode()
        + b"\ndata: "
        + orjson.dumps(item)
        + b"\n\n"
    )


@router.get(
    "/alarms/stream",
    responses={
        400: {
            "model": Problem,
            "content": {MEDIA_TYPE: {}},
            "description": "a Last-Event-ID that is not an event id",
        }
    },
)
async def stream(
    p: Annotated[Principal, Depends(require(ALARMS_READ))],
    ctx: Context,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    position = await asyncio.to_thread(_start, ctx, last_event_id)
    tail = Tail(position)
    sub = ctx.bus.subscribe(None, maxsize=1) if ctx.bus is not None else None

    async def woken(wait_s: float) -> None:
        if sub is None:
            await asyncio.sleep(wait_s)
            return
        try:  # any push of this worker: a new line may be there
            await asyncio.wait_for(sub.get(), wait_s)
        except TimeoutError:
            pass

    async def events() -> AsyncIterator[bytes]:
        last_sent = checked = time.monotonic()
        try:
            yield b": connected\n\n"
            while True:
                now = time.monotonic()
                if now - checked >= ctx.token_recheck_s:
                    checked = now
                    reason = await asyncio.to_thread(_refusal, ctx, p)
                    if reason is not None:
                        yield closed(reason)
                        return
                try:
                    items = await asyncio.to_thread(_poll, ctx, tail, p)
                except UNAVAILABLE as exc:  # the database is away: keep the position, retry
                    log.warning("event stream: feed not read: %s", type(exc).__name__)
                    items = []
                for event_id, item in items:
                    last_sent = time.monotonic()
                    yield frame(event_id, item)
                if items:
                    continue  # a storm: read on before waiting
                now = time.monotonic()
                if now - last_sent >= KEEPALIVE_S:
                    last_sent = now
                    yield b": keepalive\n\n"
                wait = min(POLL_S, KEEPALIVE_S - (now - last_sent), ctx.token_recheck_s - (now - checked))
                await woken(max(wait, 0.01))
        finally:
            if sub is not None:
                sub.close()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
