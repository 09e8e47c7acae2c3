"""Sensor changes become protocol events, readings fit-sized telemetry: pure, no broker."""

from __future__ import annotations

from devices.runtime import Change
from edge.store import LANE_ALARM, LANE_EVENT
from edge.uplink import Stamp, event_entry, event_from_change, readings_of, split, telemetry
from protocols import AlarmClass, Channel, EventKind, EventState, encode, new_event_id
from protocols.codec import LIMITS
from protocols.messages import MAX_READINGS

ST = Stamp(seq=7, id="01a22383-606b-7f44-b81c-96bc1b565156", ts=1_700_000_000_000, synced=True)


def test_battery_low_carries_the_voltage_and_is_a_trouble_without_siren_lane() -> None:
    ev = event_from_change("gw-1", Change("power-1", "battery_low", True, "battery", {"battery_v": 3.55}), ST)
    assert (ev.sensor, ev.kind, ev.state, ev.alarm_class) == (
        "power-1", EventKind.BATTERY_LOW, EventState.ALARM, AlarmClass.TROUBLE,
    )  # fmt: skip
    assert ev.values is not None and (ev.values.battery_v, ev.values.lel) == (3.55, None)
    assert event_entry(ev).lane == LANE_EVENT  # a trouble: delivered first among events, no siren


def test_mains_lost_and_tamper_restores_have_no_values_and_gas_keeps_its_lel() -> None:
    mains = event_from_change("gw-1", Change("power-1", "mains_lost", False, "mains"), ST)
    assert (mains.kind, mains.state, mains.values) == (EventKind.MAINS_LOST, EventState.RESTORE, None)
    tamper = event_from_change("gw-1", Change("smoke-2", "tamper", True, "tamper"), ST)
    assert (tamper.kind, tamper.alarm_class, event_entry(tamper).lane) == (
        EventKind.TAMPER, AlarmClass.TROUBLE, LANE_EVENT,
    )  # fmt: skip
    gas = event_from_change("gw-1", Change("gas-1", "gas", True, "level", {"lel": 25.0}), ST)
    assert gas.values is not None and gas.values.lel == 25.0 and event_entry(gas).lane == LANE_ALARM


def test_telemetry_is_split_to_fit_the_payload_limit_and_loses_no_reading() -> None:
    long = "s" * 64
    rows = readings_of({f"{long[:60]}{i:04d}": {"m" * 64: -987654321.1234567, "x": 0.5} for i in range(2000)})
    batches = split(rows)
    assert len(batches) > 1 and sum(len(b) for b in batches) == len(rows) == 4000
    assert [r for b in batches for r in b] == rows  # in order, none dropped (was: first 1000 kept)
    for i, b in enumerate(batches):
        msg = telemetry("g" * 64, b, Stamp(2**63 - 1, new_event_id(), 7_258_118_399_999, True))
        assert len(encode(msg)) <= LIMITS[Channel.TELEMETRY] and len(b) <= MAX_READINGS, i
    assert split([]) == []


def test_the_largest_event_fits_its_limit() -> None:
    values = {"lel": 100.0, "battery_v": 59.999999999}
    change = Change("s" * 64, "clock_unsynced", True, "boot", values)
    ev = event_from_change("g" * 64, change, Stamp(2**63 - 1, new_event_id(), 7_258_118_399_999, False))
    assert len(event_entry(ev).payload) < LIMITS[Channel.EVENT] // 4
