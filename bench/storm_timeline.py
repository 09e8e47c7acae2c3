"""Where the storm's time goes, read back from the hub's tables after ``safehome bench storm``.

A cut gateway's alarm passes three marks: the hub stores its Last-Will (``gateway_state.
status_at``), a supervision round opens its ``gateway_offline`` condition once
``offline_grace_s`` has passed (``conditions.opened_at``, the round's start), and the alarm
engine decides it (``alarm_signals.processed_at`` of ``cond:<id>:alarm``). A ``mains_lost``
is decided from its stored event (``events.received_at`` → ``ev:<id>``). Wall clocks of the
bench and the hub are the same machine's.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.system import percentile
from hub.alarms.store.models import ProcessedSignal
from hub.db.engine import make_engine
from hub.db.events import StoredEvent
from hub.db.state import Condition, GatewayState

#: the cut gateway's conditions (gateway_silent: it was already silent, the same outage)
OFFLINE_KINDS = ("gateway_offline", "gateway_silent")


def _s(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f} / {max(values):.1f} s"


def _ts(at: dt.datetime) -> float:
    return at.replace(tzinfo=dt.UTC).timestamp() if at.tzinfo is None else at.timestamp()


def timeline_rows(db_url: str, storm_t0: float, last_sent: float, cut: set[str], lost: set[str]) -> list[tuple[str, str]]:
    """Rows ``(figure, value)``: each stage's p50 / p99 / max, and the last of each mark
    counted from ``last_sent`` (the bench's last Last-Will)."""
    since = dt.datetime.fromtimestamp(storm_t0, dt.UTC)
    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            will = dict(
                s.execute(select(GatewayState.gateway_id, GatewayState.status_at).where(GatewayState.online.is_(False))).all()
            )
            conds = s.execute(
                select(Condition.id, Condition.gateway_id, Condition.opened_at).where(
                    Condition.kind.in_(OFFLINE_KINDS), Condition.opened_at >= since
                )
            ).all()
            mains = s.execute(
                select(StoredEvent.id, StoredEvent.gateway_id, StoredEvent.received_at).where(
                    StoredEvent.kind == "mains_lost", StoredEvent.received_at >= since
                )
            ).all()
            keys = [f"cond:{c.id}:alarm" for c in conds if c.gateway_id in cut]
            keys += [f"ev:{m.id}" for m in mains if m.gateway_id in lost]
            decided: dict[str, dt.datetime] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                decided.update(
                    s.execute(select(ProcessedSignal.key, ProcessedSignal.processed_at).where(ProcessedSignal.key.in_(chunk))).all()
                )
    finally:
        engine.dispose()
    will_to_open, open_to_decided, mains_to_decided = [], [], []
    wills, opened, done = [], [], []
    for c in conds:
        if c.gateway_id not in cut:
            continue
        opened.append(_ts(c.opened_at))
        at = will.get(c.gateway_id)
        if at is not None:
            wills.append(_ts(at))
            will_to_open.append(_ts(c.opened_at) - _ts(at))
        d = decided.get(f"cond:{c.id}:alarm")
        if d is not None:
            done.append(_ts(d))
            open_to_decided.append(_ts(d) - _ts(c.opened_at))
    for m in mains:
        d = decided.get(f"ev:{m.id}")
        if m.gateway_id in lost and d is not None:
            done.append(_ts(d))
            mains_to_decided.append(_ts(d) - _ts(m.received_at))

    def last(marks: list[float]) -> str:
        return f"{max(marks) - last_sent:.1f}" if marks else "-"

    return [
        ("timeline: Last-Will stored → condition opened (offline grace + round) p50 / p99 / max", _s(will_to_open)),
        ("timeline: condition opened → decided p50 / p99 / max", _s(open_to_decided)),
        ("timeline: mains_lost stored → decided p50 / p99 / max", _s(mains_to_decided)),
        (
            "timeline: after the last Last-Will sent: last Last-Will stored / last condition opened / last decided",
            f"{last(wills)} / {last(opened)} / {last(done)} s",
        ),
    ]
