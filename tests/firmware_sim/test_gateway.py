"""The pure gateway core: same id on resend, backoff, alarms first, acks drop, home items returned."""

from __future__ import annotations

import protocols as p
from firmware_sim.fleet.gateway import GatewaySpec, SensorSpec, SimGateway

SPEC = GatewaySpec(
    "gw-core",
    (SensorSpec("smoke-1", "smoke-dry-contact", "smoke"), SensorSpec("gas-1", "gas-detector", "gas")),
)


def test_pending_is_resent_with_the_same_bytes_and_backoff() -> None:
    g = SimGateway(SPEC, resend_s=10, resend_max_s=40)
    pend = g.event(p.EventKind.SMOKE, p.EventState.ALARM, "smoke-1", 1_000)
    assert [x.id for x in g.due(0.0)] == [pend.id]
    assert g.due(9.9) == []
    again = g.due(10.0)
    assert again == [pend] and again[0].payload == pend.payload
    assert pend.next_at == 30.0  # 10 → 20
    g.due(30.0)
    g.due(70.0)
    assert pend.next_at == 110.0  # capped at 40 s


def test_alarms_overtake_telemetry_and_sequence_grows() -> None:
    g = SimGateway(SPEC)
    t = g.telemetry(1_000)
    a = g.event(p.EventKind.GAS, p.EventState.ALARM, "gas-1", 1_001)
    trouble = g.event(p.EventKind.MAINS_LOST, p.EventState.ALARM, None, 1_002)
    assert [x.id for x in g.due(0.0)] == [a.id, t.id, trouble.id]
    decoded = [p.decode(x.channel, x.payload) for x in (t, a, trouble)]
    assert [m.seq for m in decoded] == [1, 2, 3]  # type: ignore[attr-defined]


def test_stored_and_rejected_acks_drop_others_reach_the_home() -> None:
    g = SimGateway(SPEC)
    a = g.event(p.EventKind.SMOKE, p.EventState.ALARM, "smoke-1", 1)
    b = g.event(p.EventKind.SMOKE, p.EventState.RESTORE, "smoke-1", 2)
    ack = p.Ack(gw="gw-core", ts=3, items=[
        p.AckItem(id=a.id, status=p.AckStatus.STORED),
        p.AckItem(id=a.id, status=p.AckStatus.DISPATCHED, by="ws-0001"),
        p.AckItem(id=b.id, status=p.AckStatus.REJECTED, reason="bad"),
    ])  # fmt: skip
    home = g.on_ack(ack)
    assert g.pending == {}
    assert [(i.status, i.by) for i in home] == [(p.AckStatus.DISPATCHED, "ws-0001")]


def test_telemetry_carries_one_reading_per_sensor_and_scenario_values() -> None:
    g = SimGateway(SPEC)
    g.readings["gas-1/gas_lel"] = 23.5
    msg = p.decode(p.Channel.TELEMETRY, g.telemetry(5).payload, p.Telemetry)
    assert {(r.sensor, r.metric) for r in msg.readings} == {("smoke-1", "battery_v"), ("gas-1", "gas_lel")}
    assert next(r.value for r in msg.readings if r.sensor == "gas-1") == 23.5


def test_status_reports_buffer_depth_and_sensors() -> None:
    g = SimGateway(SPEC)
    g.event(p.EventKind.PANIC, p.EventState.ALARM, None, 1)
    st = p.decode(p.Channel.STATUS, g.status(p.GatewayState.ONLINE, "heartbeat", 9, 30), p.Status)
    assert (st.buffer_depth, st.alarms_pending, len(st.sensors)) == (1, 1, 2)


def test_window_holds_back_telemetry_but_never_alarms() -> None:
    g = SimGateway(SPEC, resend_s=10, window=2)
    backlog = g.backlog(5, 60, now_ms=1_000_000)
    assert [p.decode(x.channel, x.payload, p.Telemetry).ts for x in backlog] == [
        1_000_000 - k * 60_000 for k in (5, 4, 3, 2, 1)
    ]
    first = g.due(0.0)
    assert [x.id for x in first] == [backlog[0].id, backlog[1].id]
    alarm = g.event(p.EventKind.SMOKE, p.EventState.ALARM, "smoke-1", 1)
    assert [x.id for x in g.due(1.0)] == [alarm.id]  # window full: only the alarm goes
    g.on_ack(p.Ack(gw="gw-core", ts=2, items=[p.AckItem(id=backlog[0].id, status=p.AckStatus.STORED)]))
    assert [x.id for x in g.due(2.0)] == [backlog[2].id]


def test_slow_acks_stretch_the_resend_interval() -> None:
    g = SimGateway(SPEC, resend_s=10, resend_max_s=40)
    first = g.telemetry(1)
    g.due(0.0)
    assert first.next_at == 10.0
    g.on_ack(p.Ack(gw="gw-core", ts=2, items=[p.AckItem(id=first.id, status=p.AckStatus.STORED)]), now=25.0)
    assert g.rtt_s == 25.0  # the hub took 25 s to store it (draining a backlog)
    second = g.telemetry(3)
    g.due(30.0)
    assert second.next_at == 30.0 + 100.0  # 4 x 25 s, not 10 s: no duplicate while it is queued
    again = g.event(p.EventKind.SMOKE, p.EventState.ALARM, "smoke-1", 4)
    g.due(31.0)
    g.due(131.0)  # a resent message's ack does not update the estimate (ambiguous)
    g.on_ack(p.Ack(gw="gw-core", ts=5, items=[p.AckItem(id=again.id, status=p.AckStatus.STORED)]), now=131.5)
    assert g.rtt_s == 25.0
