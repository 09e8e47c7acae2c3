"""Pure parts of the ingest: batch planning, ack building, the priority queue."""

from __future__ import annotations

import asyncio

import protocols as p
from hub.downlink import MAX_ACK_ITEMS, acks, stored_items
from hub.ingest.decode import Rejected
from hub.ingest.fair import Bounds, gateway_of, rank_of
from hub.ingest.plan import make_plan
from hub.ingest.service import UplinkQueue
from hub.ingest.uplink import Uplink
from safehome.testing.events import make_event
from tests.hub.ingest.conftest import PLAN_NOW, incoming

BOUNDS = Bounds.of(200_000, 64)

NOW = PLAN_NOW  #: when incoming() received the messages


def status(gw: str, state: p.GatewayState, reason: str = "heartbeat") -> p.Status:
    return p.Status.model_validate({"gw": gw, "state": state, "reason": reason, "ts": 1, "synced": True,
                                    "sensors": [{"id": "smoke-1", "model": "m"}, {"id": "gas-1", "model": "m",
                                                                                   "ok": False}]}, strict=False)


def test_alarms_first_and_last_seen_per_gateway_and_sensor() -> None:
    test_ev, panic = make_event("gw-1", kind=p.EventKind.TEST, seq=1, sensor="s-1"), make_event("gw-1", kind=p.EventKind.PANIC, seq=2, sensor="s-1")
    battery = make_event("gw-2", kind=p.EventKind.BATTERY_LOW, seq=3, sensor="s-1")
    tel = p.Telemetry(gw="gw-2", seq=9, id=p.new_event_id(), ts=5, synced=True,
                      readings=[p.Reading(sensor="gas-1", metric="gas_lel", value=1.5, ts=4)])
    plan = make_plan([incoming(test_ev), incoming(battery), incoming(panic), incoming(tel)])
    assert [e.kind for e in plan.events] == [p.EventKind.PANIC, p.EventKind.BATTERY_LOW, p.EventKind.TEST]
    assert plan.gateways["gw-1"].last_seq == 2 and plan.gateways["gw-2"].last_seq == 9
    assert set(plan.sensors) == {("gw-1", "s-1"), ("gw-2", "s-1"), ("gw-2", "gas-1")}
    assert [(pt.sensor_id, pt.metric, pt.ts, pt.value) for pt in plan.points()] == [("gas-1", "gas_lel", 4, 1.5)]


def test_last_will_does_not_refresh_last_seen_and_retained_only_seeds() -> None:
    plan = make_plan([incoming(status("gw-1", p.GatewayState.OFFLINE, "lwt"))])
    g = plan.gateways["gw-1"]
    assert (g.online, g.last_seen, g.retained_only) == (False, None, False)
    plan = make_plan([incoming(status("gw-1", p.GatewayState.ONLINE), retained=True)])
    g = plan.gateways["gw-1"]
    assert (g.online, g.last_seen, g.retained_only) == (True, None, True)
    assert plan.sensors == {}
    plan = make_plan([incoming(status("gw-1", p.GatewayState.ONLINE))])
    assert plan.gateways["gw-1"].last_seen == NOW
    assert set(plan.sensors) == {("gw-1", "smoke-1")}  # gas-1 reported not ok: not "heard"


def test_rejected_with_readable_id_is_acked_rejected() -> None:
    r = Rejected("bad_field", "kind: bad", "safehome/v1/gw/gw-1/event", "gw-1", p.new_event_id(), "kind")
    plan = make_plan([r, Rejected("bad_json", "x", "safehome/v1/gw/gw-1/event")])
    [item] = plan.rejected_acks["gw-1"]
    assert (item.status, item.reason, item.field, item.detail) == (p.AckStatus.REJECTED, "bad_field", "kind", "kind: bad")


def test_acks_are_split_past_the_protocol_limit_and_deduplicated() -> None:
    evs = [make_event("gw-1", kind=p.EventKind.SMOKE, seq=i, sensor="s-1") for i in range(MAX_ACK_ITEMS + 5)]
    items = stored_items(evs + evs[:3])
    assert len(items["gw-1"]) == MAX_ACK_ITEMS + 5
    out = acks(items, 123)
    assert [len(a.items) for _, a in out] == [MAX_ACK_ITEMS, 5]
    assert all(t == "safehome/v1/gw/gw-1/ack" for t, _ in out)
    for _, a in out:  # every ack is a valid protocol message
        assert p.decode(p.Channel.ACK, p.encode(a)) == a


def put(q: UplinkQueue, topic: str, payload: bytes) -> None:
    channel = topic.rsplit("/", 1)[-1]
    q.put(Uplink(topic, payload, False), gateway_of(topic), rank_of(channel, payload))


async def test_events_overtake_a_telemetry_backlog() -> None:
    q = UplinkQueue(BOUNDS)
    for i in range(50):
        put(q, f"safehome/v1/gw/gw-{i}/telemetry", b"t")
    put(q, "safehome/v1/gw/gw-x/status", b"s")
    put(q, "safehome/v1/gw/gw-x/event", b'{"kind": "smoke"}')
    put(q, "safehome/v1/gw/gw-y/event", b'{"kind": "mains_lost"}')
    # a life-safety event first, in a batch of its own: never stored and acked together
    # with a storm's status and trouble, nor with telemetry
    first = await q.take(3, 3)
    assert [m.topic for m in first] == ["safehome/v1/gw/gw-x/event"]
    second = await q.take(3, 3)  # then status (supervisory) before trouble
    assert [m.topic for m in second] == ["safehome/v1/gw/gw-x/status", "safehome/v1/gw/gw-y/event"]
    third = await q.take(3, 3)
    assert [m.topic for m in third] == [f"safehome/v1/gw/gw-{i}/telemetry" for i in range(3)]
    assert len(q) == 47


async def test_telemetry_take_lingers_for_a_fuller_batch() -> None:
    q = UplinkQueue(BOUNDS)
    put(q, "safehome/v1/gw/gw-0/telemetry", b"t")
    taking = asyncio.create_task(q.take(10, 10, linger_s=60.0))
    await asyncio.sleep(0)  # let take() see the first message and start lingering
    for i in range(1, 10):  # the tenth message fills the batch...
        put(q, f"safehome/v1/gw/gw-{i}/telemetry", b"t")
    batch = await taking  # ...and ends the linger at once: taken together
    assert len(batch) == 10 and len(q) == 0
