"""Round trips, strictness, limits and garbage for every message of protocol v1."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import protocols as p
from protocols.codec import LIMITS, MODELS
from protocols.export_schema import SCHEMA_DIR, render, schemas
from protocols.ids import ID_PATTERN
from protocols.messages import MAX_TS_MS, SensorConfig, SensorHealth, Values

ids = st.from_regex(ID_PATTERN, fullmatch=True)
uuids = st.builds(lambda: p.new_event_id())
ts = st.integers(0, MAX_TS_MS)
seq = st.integers(0, 2**63 - 1)
finite = st.floats(-1e9, 1e9, allow_nan=False)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), finite, st.text(max_size=20))

values = st.builds(
    Values,
    ppm=st.none() | st.floats(0, 1e6),
    lel=st.none() | st.floats(0, 100),
    battery_v=st.none() | st.floats(0, 60),
    rssi=st.none() | st.integers(-150, 0),
    temperature_c=st.none() | st.floats(-60, 200),
)
events = st.builds(
    p.Event,
    gw=ids,
    seq=seq,
    id=uuids,
    ts=ts,
    synced=st.booleans(),
    sensor=st.none() | ids,
    kind=st.sampled_from(p.EventKind),
    state=st.sampled_from(p.EventState),
    values=st.none() | values,
)
readings = st.builds(p.Reading, sensor=ids, metric=ids, value=finite, ts=st.none() | ts)
telemetry = st.builds(
    p.Telemetry, gw=ids, seq=seq, id=uuids, ts=ts, synced=st.booleans(),
    readings=st.lists(readings, min_size=1, max_size=20),
)
statuses = st.builds(
    p.Status, gw=ids, state=st.sampled_from(p.GatewayState), ts=ts, synced=st.booleans(),
    seq=st.none() | seq, buffer_depth=st.none() | st.integers(0, 10**6),
    sensors=st.lists(st.builds(SensorHealth, id=ids, model=ids, ok=st.booleans()), max_size=5),
)
results = st.builds(
    p.CommandResult, gw=ids, seq=seq, id=uuids, ts=ts, synced=st.booleans(), command_id=uuids,
    command=ids, ok=st.booleans(), detail=st.text(max_size=50),
    data=st.dictionaries(ids, scalars, max_size=5),
)
acks = st.builds(
    p.Ack, gw=ids, ts=ts,
    items=st.lists(st.builds(p.AckItem, id=uuids, status=st.sampled_from(p.AckStatus)), min_size=1, max_size=5),
)
configs = st.builds(
    p.Config, gw=ids, revision=st.integers(0, 10**6), ts=ts,
    sensors=st.lists(st.builds(SensorConfig, id=ids, model=ids), max_size=4),
)
commands = st.builds(
    p.Command, gw=ids, id=uuids, name=st.sampled_from([c.value for c in p.CommandName]) | ids, ts=ts,
    args=st.dictionaries(ids, scalars, max_size=3),
)
STRATEGIES: dict[p.Channel, st.SearchStrategy[Any]] = {
    p.Channel.EVENT: events,
    p.Channel.TELEMETRY: telemetry,
    p.Channel.STATUS: statuses,
    p.Channel.RESULT: results,
    p.Channel.ACK: acks,
    p.Channel.CONFIG: configs,
    p.Channel.COMMAND: commands,
}


@pytest.mark.parametrize("channel", list(p.Channel))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(channel: p.Channel, data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[channel])
    wire = p.encode(msg)
    assert len(wire) <= LIMITS[channel]
    assert p.decode(channel, wire) == msg
    # and every encoded message validates against the exported JSON Schema
    import jsonschema

    jsonschema.validate(json.loads(wire), schemas()[f"{channel.value}.json"])


@pytest.mark.parametrize("channel", list(p.Channel))
@settings(max_examples=150, deadline=None)
@given(payload=st.binary(max_size=300) | st.text(max_size=300))
def test_garbage_raises_only_protocol_error(channel: p.Channel, payload: bytes | str) -> None:
    try:
        p.decode(channel, payload)
    except p.ProtocolError as exc:
        assert exc.reason and str(exc)


json_values = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize("channel", list(p.Channel))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_mutated_messages_raise_only_protocol_error(channel: p.Channel, data: st.DataObject) -> None:
    """Valid messages with one field replaced by arbitrary JSON: decoded or refused, nothing else."""
    obj = json.loads(p.encode(data.draw(STRATEGIES[channel])))
    key = data.draw(st.sampled_from(sorted(obj)))
    obj[key] = data.draw(json_values)
    try:
        p.decode(channel, json.dumps(obj))
    except p.ProtocolError as exc:
        assert exc.reason in {"bad_field", "missing_field", "unsupported_version", "too_large"}


def _event(**over: Any) -> dict[str, Any]:
    base = {"v": "1.0", "gw": "gw-1", "seq": 7, "id": p.new_event_id(), "ts": 1_700_000_000_000,
            "synced": True, "sensor": "smoke-1", "kind": "smoke", "state": "alarm"}
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("override", "reason", "field"),
    [
        ({"seq": "7"}, "bad_field", "seq"),
        ({"seq": -1}, "bad_field", "seq"),
        ({"synced": 1}, "bad_field", "synced"),
        ({"kind": "earthquake"}, "bad_field", "kind"),
        ({"id": "not-a-uuid"}, "bad_field", "id"),
        ({"gw": "a/b"}, "bad_field", "gw"),
        ({"sensor": "#"}, "bad_field", "sensor"),
        ({"v": "2.0"}, "unsupported_version", "v"),
        ({"ts": 10**15}, "bad_field", "ts"),
        ({"values": {"lel": 120}}, "bad_field", "values.lel"),
    ],
)
def test_specific_reasons(override: dict[str, Any], reason: str, field: str) -> None:
    with pytest.raises(p.ProtocolError) as exc:
        p.decode(p.Channel.EVENT, json.dumps(_event(**override)))
    assert (exc.value.reason, exc.value.field) == (reason, field)


def test_missing_field_is_named() -> None:
    obj = _event()
    del obj["kind"]
    with pytest.raises(p.ProtocolError) as exc:
        p.decode(p.Channel.EVENT, json.dumps(obj))
    assert (exc.value.reason, exc.value.field) == ("missing_field", "kind")


def test_nan_is_refused() -> None:
    raw = json.dumps(_event()).replace('"state": "alarm"', '"state": "alarm", "values": {"ppm": NaN}')
    with pytest.raises(p.ProtocolError):
        p.decode(p.Channel.EVENT, raw)


def test_newer_minor_version_and_unknown_fields_are_tolerated() -> None:
    msg = p.decode(p.Channel.EVENT, json.dumps(_event(v="1.7", colour="red", values={"ppm": 3, "x": 1})))
    assert isinstance(msg, p.Event) and msg.v == "1.7" and msg.values and msg.values.ppm == 3


def test_too_large_is_refused_before_parsing() -> None:
    payload = b"{" + b" " * LIMITS[p.Channel.EVENT] + b"}"
    with pytest.raises(p.ProtocolError) as exc:
        p.decode(p.Channel.EVENT, payload)
    assert exc.value.reason == "too_large"
    assert str(LIMITS[p.Channel.EVENT]) in str(exc.value)


def test_too_many_readings() -> None:
    obj = _event()
    for k in ("sensor", "kind", "state"):
        del obj[k]
    obj["readings"] = [{"sensor": "s", "metric": "m", "value": 1.0}] * 1001
    with pytest.raises(p.ProtocolError) as exc:
        p.decode(p.Channel.TELEMETRY, json.dumps(obj))
    assert exc.value.field == "readings"


def test_gateway_must_match_topic() -> None:
    wire = json.dumps(_event(gw="gw-2"))
    with pytest.raises(p.ProtocolError) as exc:
        p.decode_for("safehome/v1/gw/gw-1/event", wire)
    assert exc.value.reason == "gateway_mismatch"
    topic, msg = p.decode_for("safehome/v1/gw/gw-2/event", wire)
    assert topic.gateway_id == "gw-2" and isinstance(msg, p.Event)


def test_event_ids_are_uuid7_and_time_ordered() -> None:
    a, b = p.new_event_id(1_000), p.new_event_id(2_000)
    assert uuid.UUID(a).version == 7 and uuid.UUID(a).variant == uuid.RFC_4122
    assert a < b
    assert len({p.new_event_id(5) for _ in range(1000)}) == 1000


def test_classes() -> None:
    assert p.class_of(p.EventKind.SMOKE) is p.AlarmClass.ALARM
    assert p.class_of(p.EventKind.SENSOR_SILENT) is p.AlarmClass.SUPERVISORY
    assert p.class_of(p.EventKind.BATTERY_LOW) is p.AlarmClass.TROUBLE
    assert p.class_of(p.EventKind.BUFFER_FAILED) is p.AlarmClass.TROUBLE  # the SD card refuses writes
    assert all(isinstance(p.class_of(k), p.AlarmClass) for k in p.EventKind)


@pytest.mark.parametrize("name", sorted(schemas()))
def test_exported_schemas_are_current(name: str) -> None:
    """`make schemas` was run after the models last changed."""
    assert (SCHEMA_DIR / name).read_text() == render(schemas()[name])


def test_every_channel_has_a_model_and_limit() -> None:
    assert set(MODELS) == set(LIMITS) == set(p.Channel)
    assert all(issubclass(m, BaseModel) for m in MODELS.values())
