"""Garbage, oversize and forged payloads at rate, interleaved with good ones: every good
message is stored and acked, every bad one counted by reason, the loop never stops."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

import protocols as p
from hub.db.events import StoredEvent
from hub.ingest.decode import RateLimitedLog, Rejected, classify
from hub.timeseries.models import ReadingRow
from safehome.testing.poll import until
from tests.hub.ingest.conftest import Worker
from tests.support.hub_gateway import ScriptedGateway, now_ms
from tests.support.hub_mqtt import SecuredBroker

GOOD = 150


def bad_payloads(gw: str) -> list[tuple[str, bytes, str]]:
    """(channel, payload, expected reason)."""
    ok = {
        "gw": gw,
        "seq": 1,
        "id": p.new_event_id(),
        "ts": now_ms(),
        "synced": True,
        "sensor": "smoke-1",
        "kind": "smoke",
        "state": "alarm",
    }
    return [
        ("event", b"not json at all", "bad_json"),
        ("event", b"\xff\xfe\x00garbage", "bad_json"),
        ("event", b"", "bad_json"),
        ("event", b"[1, 2, 3]", "not_an_object"),
        ("event", orjson.dumps({**ok, "pad": "x" * 5000}), "too_large"),
        ("event", orjson.dumps({**ok, "id": p.new_event_id(), "gw": "someone-else"}), "gateway_mismatch"),
        ("event", orjson.dumps({**ok, "id": p.new_event_id(), "kind": "flood"}), "bad_field"),
        ("event", orjson.dumps({**ok, "v": "2.0"}), "unsupported_version"),
        (
            "telemetry",
            orjson.dumps(
                {"gw": gw, "seq": 2, "id": p.new_event_id(), "ts": now_ms(), "synced": True, "readings": []}
            ),
            "bad_field",
        ),
        ("status", b'{"gw": 1}', "bad_field"),
    ]


async def test_good_messages_survive_garbage_at_rate(secured: SecuredBroker, worker: Worker) -> None:
    gw = ScriptedGateway(secured, "rej-gw-1").connect()
    try:
        bad = bad_payloads(gw.gw)
        events, telemetry = [], []
        infos = []
        for i in range(GOOD):
            ev = gw.event(sensor=f"s-{i % 5}")
            events.append(ev)
            infos.append(gw.client.c.publish(str(p.Topic.of(gw.gw, "event")), p.encode(ev), qos=1))
            channel, payload, _ = bad[i % len(bad)]
            infos.append(gw.client.c.publish(f"{p.ROOT}/gw/{gw.gw}/{channel}", payload, qos=1))
            if i % 3 == 0:
                t = gw.telemetry(
                    [(f"s-{i % 5}", "battery_v", 3.0 + i / 1000), ("gas-1", "gas_lel", float(i % 7))],
                    ts=now_ms() + i,
                )
                telemetry.append(t)
                infos.append(gw.client.c.publish(str(p.Topic.of(gw.gw, "telemetry")), p.encode(t), qos=1))
        for info in infos:
            info.wait_for_publish(10)
        await gw.acked([m.id for m in events + telemetry], within=60)
        with worker.engine.connect() as conn:
            n_events = conn.scalar(
                select(func.count()).select_from(StoredEvent).where(StoredEvent.gateway_id == gw.gw)
            )
            n_readings = conn.scalar(
                select(func.count()).select_from(ReadingRow).where(ReadingRow.gateway_id == gw.gw)
            )
        assert n_events == GOOD
        assert n_readings == 2 * len(telemetry)
        rounds = {reason: 0 for _, _, reason in bad}
        for i in range(GOOD):
            rounds[bad[i % len(bad)][2]] += 1
        await until(
            lambda: all(
                worker.count("safehome_messages_rejected_total", reason=r) >= n for r, n in rounds.items()
            ),
            what="rejects counted",
        )
        for reason, n in rounds.items():
            assert worker.count("safehome_messages_rejected_total", reason=reason) == n, reason
        assert worker.count("safehome_messages_in_total", type="event") == GOOD
        # a refused event whose id is readable is answered `rejected`, so the gateway stops resending
        flood_id = orjson.loads(bad[6][1])["id"]
        await gw.acked([flood_id])
        assert gw.acks[flood_id][0].status is p.AckStatus.REJECTED
        item = gw.acks[flood_id][0]  # the stable reason, the field and a readable detail
        assert (item.reason, item.field) == ("bad_field", "kind"), item
        assert "kind" in (item.detail or "")
        forged_id = orjson.loads(bad[5][1])["id"]  # payload claims another gateway
        await gw.acked([forged_id])
        assert gw.acks[forged_id][0].status is p.AckStatus.REJECTED
    finally:
        gw.close()


def test_classify_never_raises_and_names_the_reason() -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    assert isinstance(classify("safehome/v1/gw/x/event", b"{}", False, now), Rejected)
    r = classify("not/a/topic", b"{}", False, now)
    assert isinstance(r, Rejected) and r.reason == "bad_topic"
    r = classify("safehome/v1/gw/x/ack", b"{}", False, now)
    assert isinstance(r, Rejected) and r.reason == "not_uplink"
    r = classify("safehome/v1/gw/x/event", b"\x00" * 10_000, False, now)
    assert isinstance(r, Rejected) and r.reason == "too_large" and r.msg_id is None


def test_reject_log_is_rate_limited_per_reason(caplog: object) -> None:
    import logging

    logger = logging.getLogger("test.rejects")
    rl = RateLimitedLog(logger, interval_s=10)
    r = Rejected("bad_json", "x", "safehome/v1/gw/gw-1/event")
    other = Rejected("too_large", "y", "safehome/v1/gw/gw-1/event")
    assert rl.reject(r, now=0.0)
    assert not rl.reject(r, now=1.0)
    assert not rl.reject(r, now=2.0)
    assert rl.reject(other, now=2.0)  # another reason is not held back
    assert rl.reject(r, now=10.5)
    assert rl._suppressed == {}
