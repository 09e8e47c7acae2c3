"""MQTT 3.1.1 packets: encoders for what a client sends, an incremental reader for what it gets.

Pure functions over bytes (no I/O); errors are :class:`~firmware_sim.errors.MqttError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firmware_sim.errors import MqttError

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14
#: a SUBACK return code: the subscription was refused
SUBACK_FAILURE = 0x80
MAX_PACKET = 256 * 1024 * 1024 - 1  # largest remaining length MQTT can encode

CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


def _varint(n: int) -> bytes:
    if not 0 <= n <= MAX_PACKET:
        raise MqttError(f"remaining length {n} outside 0..{MAX_PACKET}")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    if len(b) > 0xFFFF:
        raise MqttError(f"string of {len(b)} bytes, limit 65535")
    return struct.pack("!H", len(b)) + b


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


def connect(
    client_id: str,
    *,
    keepalive: int = 60,
    clean: bool = True,
    username: str | None = None,
    password: str | None = None,
    will_topic: str | None = None,
    will_payload: bytes = b"",
    will_qos: int = 1,
    will_retain: bool = True,
) -> bytes:
    flags = 0x02 if clean else 0
    payload = _str(client_id)
    if will_topic is not None:
        flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
        payload += _str(will_topic) + _str(will_payload)
    if username is not None:
        flags |= 0x80
        payload += _str(username)
        if password is not None:
            flags |= 0x40
            payload += _str(password)
    return _packet(CONNECT << 4, _str("MQTT") + bytes((4, flags)) + struct.pack("!H", keepalive) + payload)


def publish(
    topic: str, payload: bytes, qos: int = 0, retain: bool = False, packet_id: int = 0, dup: bool = False
) -> bytes:
    first = (PUBLISH << 4) | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    body = _str(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return _packet(first, body)


def puback(packet_id: int) -> bytes:
    return _packet(PUBACK << 4, struct.pack("!H", packet_id))


def subscribe(packet_id: int, filters: list[tuple[str, int]]) -> bytes:
    body = struct.pack("!H", packet_id) + b"".join(_str(f) + bytes((q,)) for f, q in filters)
    return _packet((SUBSCRIBE << 4) | 0x02, body)


PINGREQ_BYTES = bytes((PINGREQ << 4, 0))
DISCONNECT_BYTES = bytes((DISCONNECT << 4, 0))


@dataclass(frozen=True, slots=True)
class Packet:
    type: int
    flags: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Incoming:
    """A PUBLISH received from the broker."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int


def parse_publish(p: Packet) -> Incoming:
    if len(p.body) < 2:
        raise MqttError("PUBLISH shorter than its topic length")
    (tlen,) = struct.unpack_from("!H", p.body)
    qos = (p.flags >> 1) & 3
    if qos == 3:
        raise MqttError("PUBLISH with QoS 3")
    pos = 2 + tlen
    pid = 0
    if qos:
        if len(p.body) < pos + 2:
            raise MqttError("PUBLISH without packet id")
        (pid,) = struct.unpack_from("!H", p.body, pos)
        pos += 2
    try:
        topic = p.body[2 : 2 + tlen].decode()
    except UnicodeDecodeError as exc:
        raise MqttError("PUBLISH topic is not UTF-8") from exc
    return Incoming(topic, p.body[pos:], qos, bool(p.flags & 1), pid)


class PacketReader:
    """Split a byte stream into packets; keeps partial data between :meth:`feed` calls."""

    def __init__(self, max_packet: int = 1024 * 1024) -> None:
        self._buf = bytearray()
        self.max_packet = max_packet

    def feed(self, data: bytes) -> list[Packet]:
        self._buf += data
        out: list[Packet] = []
        buf = self._buf
        while len(buf) >= 2:
            length, mult, pos = 0, 1, 1
            while True:
                if pos >= len(buf):
                    self._buf = buf
                    return out  # length not complete yet
                byte = buf[pos]
                length += (byte & 0x7F) * mult
                pos += 1
                if not byte & 0x80:
                    break
                mult <<= 7
                if pos > 4:
                    raise MqttError("malformed remaining length (more than 4 bytes)")
            if length > self.max_packet:
                raise MqttError(f"packet of {length} bytes, limit {self.max_packet}")
            if len(buf) < pos + length:
                break
            out.append(Packet(buf[0] >> 4, buf[0] & 0x0F, bytes(buf[pos : pos + length])))
            del buf[: pos + length]
        return out
