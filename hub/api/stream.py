"""``/api/v1/alarms/stream``: the console push of this hub worker as Server-Sent Events,
scoped like every other route (items of other regions are never sent).

Each item is a nudge (``alarm.raised``, ``alarm.escalated``, ``alarm.updated`` with the
alarm's summary); the alarm list stays the truth. The same alarm pushed to several
consoles of the caller's region is sent once per change.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, HTTPException, status
from fastapi.responses import StreamingResponse

from hub.api.auth import Context, CurrentPrincipal

router = APIRouter(tags=["stream"])
KEEPALIVE_S = 15.0


@router.get("/alarms/stream")
async def stream(p: CurrentPrincipal, ctx: Context) -> StreamingResponse:
    if ctx.bus is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no console stream on this worker")
    sub = ctx.bus.subscribe(None, maxsize=1000)
    field = f"{p.region_kind}_id"

    async def events() -> AsyncIterator[bytes]:
        recent: deque[tuple[object, ...]] = deque(maxlen=2000)
        try:
            yield b": connected\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(sub.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if item.get(field) != p.region_id:
                    continue
                ident = (item.get("alarm_id"), item.get("event"), item.get("state"), item.get("count"))
                if ident in recent:
                    continue
                recent.append(ident)
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
