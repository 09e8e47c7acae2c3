"""Build a gateway ``Event`` for a test or a bench: a smoke alarm from ``smoke-1`` of
``gw-1`` unless told otherwise (any other field of :class:`protocols.Event` by keyword)."""

from __future__ import annotations

from protocols import Event, EventKind, EventState, new_event_id


def make_event(
    gw: str = "gw-1",
    *,
    kind: EventKind = EventKind.SMOKE,
    state: EventState = EventState.ALARM,
    sensor: str | None = "smoke-1",
    seq: int = 1,
    ts: int = 1,
    synced: bool = True,
    **fields: object,
) -> Event:
    """A new event (fresh id each call); ``fields`` are further Event fields (``values`` …)."""
    data: dict[str, object] = {
        "gw": gw,
        "seq": seq,
        "id": new_event_id(),
        "ts": ts,
        "synced": synced,
        "sensor": sensor,
        "kind": kind,
        "state": state,
    }
    data.update(fields)
    return Event.model_validate(data, strict=False)
