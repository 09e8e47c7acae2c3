"""The sans-IO MQTT codec: encodings match the spec and the reader survives any split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.errors import MqttError
from firmware_sim.mqtt import packets as pk


def test_connect_with_will_and_credentials_matches_the_spec() -> None:
    b = pk.connect(
        "gw-1", keepalive=60, clean=False, username="gw-1", password="pw", will_topic="t", will_payload=b"x"
    )
    assert b[0] == 0x10
    body = b[2:]
    assert body[:6] == b"\x00\x04MQTT" and body[6] == 4
    assert body[7] == 0x80 | 0x40 | 0x20 | 0x08 | 0x04  # user, password, will retain, will qos 1, will
    assert body[8:10] == b"\x00\x3c"
    assert body[10:] == b"\x00\x04gw-1" + b"\x00\x01t" + b"\x00\x01x" + b"\x00\x04gw-1" + b"\x00\x02pw"


def test_publish_qos1_round_trips_through_the_reader() -> None:
    raw = pk.publish("a/b", b"payload" * 100, qos=1, retain=True, packet_id=513)
    (packet,) = pk.PacketReader().feed(raw)
    msg = pk.parse_publish(packet)
    assert (msg.topic, msg.payload, msg.qos, msg.retain, msg.packet_id) == (
        "a/b",
        b"payload" * 100,
        1,
        True,
        513,
    )


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5), st.data())
def test_reader_reassembles_any_split(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(pk.publish(f"t/{i}", pl, qos=i % 2, packet_id=i + 1) for i, pl in enumerate(payloads))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader, got = pk.PacketReader(), []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += reader.feed(stream[a:b])
    assert [pk.parse_publish(x).payload for x in got] == payloads


def test_malformed_length_and_oversize_are_errors() -> None:
    with pytest.raises(MqttError, match="more than 4 bytes"):
        pk.PacketReader().feed(b"\x30\xff\xff\xff\xff\x01")
    with pytest.raises(MqttError, match="limit 10"):
        pk.PacketReader(max_packet=10).feed(pk.publish("t", b"x" * 20))
    with pytest.raises(MqttError, match="QoS 3"):
        pk.parse_publish(pk.Packet(3, 0x06, b"\x00\x01t\x00\x01"))
