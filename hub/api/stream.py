"""``/api/v1/alarms/stream``: the console push of this hub worker as Server-Sent Events,
scoped like every other route (items of other regions are never sent).

Each item is a nudge (``alarm.raised``, ``alarm.escalated``, ``alarm.updated`` with the
alarm's summary); the alarm list stays the truth. The same alarm pushed to several
consoles of the caller's region is sent once per change.

A stream lives no longer than its token: it re-reads the token every
``ApiContext.token_recheck_s`` and ends, with a last ``event: closed`` naming the reason,
once the token is revoked or expired (within 5 s by default).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, HTTPException, status
from fastapi.responses import StreamingResponse

from hub.api.auth import Context, CurrentPrincipal
from hub.api.context import ApiContext
from hub.api.problems import UNAVAILABLE
from hub.api.tokens import Principal, token_refusal
from hub.db.engine import read_only

log = logging.getLogger(__name__)
router = APIRouter(tags=["stream"])
KEEPALIVE_S = 15.0


def _refusal(ctx: ApiContext, p: Principal) -> str | None:
    now = ctx.clock.now()
    if p.expires_at is not None and p.expires_at <= now:
        return "token_expired"
    try:
        with ctx.sessions() as s:
            return token_refusal(read_only(s), p.token_id, now)
    except UNAVAILABLE as exc:
        # Revoking needs the database too: while it is unreachable no revocation can be
        # committed, so the operator's console stays connected rather than going dark.
        log.warning("event stream of token %s: token not re-checked: %s", p.token_id, type(exc).__name__)
        return None


def closed(reason: str) -> bytes:
    return b"event: closed\ndata: " + orjson.dumps({"reason": reason}) + b"\n\n"


@router.get("/alarms/stream")
async def stream(p: CurrentPrincipal, ctx: Context) -> StreamingResponse:
    if ctx.bus is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no console stream on this worker")
    sub = ctx.bus.subscribe(None, maxsize=1000)
    field = f"{p.region_kind}_id"

    async def events() -> AsyncIterator[bytes]:
        recent: deque[tuple[object, ...]] = deque(maxlen=2000)
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
                if now - last_sent >= KEEPALIVE_S:
                    last_sent = now
                    yield b": keepalive\n\n"
                wait = min(KEEPALIVE_S - (now - last_sent), ctx.token_recheck_s - (now - checked))
                try:
                    item = await asyncio.wait_for(sub.get(), max(wait, 0.01))
                except TimeoutError:
                    continue
                if item.get(field) != p.region_id:
                    continue
                ident = (item.get("alarm_id"), item.get("event"), item.get("state"), item.get("count"))
                if ident in recent:
                    continue
                recent.append(ident)
                last_sent = time.monotonic()
                yield (
                    b"event: "
                    + str(item.get("event", "alarm")).encode()
                    + b"\ndata: "
                    + orjson.dumps(dict(item))
                    + b"\n\n"
                )
        finally:
            sub.close()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
