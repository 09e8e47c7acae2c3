"""Encode and strictly decode protocol messages, with size limits and clear reasons.

``decode`` never raises anything but :class:`~protocols.errors.ProtocolError`, whatever
bytes it is given; ``decode_for`` also checks that the payload's gateway id matches the
topic's (a gateway cannot speak for another one).
"""

from __future__ import annotations

from typing import TypeVar, overload

from pydantic import BaseModel, ValidationError

from protocols.errors import ProtocolError
from protocols.messages import Ack, Command, CommandResult, Config, Event, Status, Telemetry
from protocols.topics import Channel, Topic

Message = Event | Telemetry | Status | CommandResult | Ack | Config | Command
M = TypeVar("M", bound=BaseModel)

#: Model and payload limit (bytes) per channel.
MODELS: dict[Channel, type[BaseModel]] = {
    Channel.EVENT: Event,
    Channel.TELEMETRY: Telemetry,
    Channel.STATUS: Status,
    Channel.RESULT: CommandResult,
    Channel.ACK: Ack,
    Channel.CONFIG: Config,
    Channel.COMMAND: Command,
}
LIMITS: dict[Channel, int] = {
    Channel.EVENT: 4 * 1024,
    Channel.TELEMETRY: 128 * 1024,
    Channel.STATUS: 16 * 1024,
    Channel.RESULT: 16 * 1024,
    Channel.ACK: 128 * 1024,
    Channel.CONFIG: 64 * 1024,
    Channel.COMMAND: 4 * 1024,
}
MAX_PAYLOAD = max(LIMITS.values())


def encode(message: BaseModel) -> bytes:
    """Compact JSON, absent optional fields left out."""
    return message.model_dump_json(exclude_none=True).encode()


def _reason(err: ValidationError) -> ProtocolError:
    first = err.errors(include_url=False)[0]
    etype = first["type"]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"]
    if etype == "json_invalid":
        return ProtocolError("bad_json", msg)
    if etype in ("model_type", "model_attributes_type", "dict_type") and not loc:
        return ProtocolError("not_an_object", "payload must be a JSON object")
    if loc == "v":
        return ProtocolError("unsupported_version", f"{msg}; this decoder speaks 1.x", "v")
    if etype == "missing":
        return ProtocolError("missing_field", msg, loc)
    extra = f" ({err.error_count()} errors)" if err.error_count() > 1 else ""
    return ProtocolError("bad_field", f"{msg}{extra}", loc)


@overload
def decode(channel: Channel, payload: bytes | str) -> BaseModel: ...
@overload
def decode(channel: Channel, payload: bytes | str, model: type[M]) -> M: ...
def decode(channel: Channel, payload: bytes | str, model: type[BaseModel] | None = None) -> BaseModel:
    """Decode one payload of ``channel``. Raises only :class:`ProtocolError`."""
    if not isinstance(payload, bytes | bytearray | str):
        raise ProtocolError("bad_payload", f"payload is {type(payload).__name__}, not bytes")
    limit = LIMITS[channel]
    size = len(payload.encode() if isinstance(payload, str) else payload)
    if size > limit:
        raise ProtocolError("too_large", f"{size} bytes, limit {limit} for {channel.value}")
    cls = model or MODELS[channel]
    try:
        return cls.model_validate_json(payload)
    except ValidationError as exc:
        raise _reason(exc) from exc
    except (ValueError, RecursionError) as exc:  # defensive: the JSON parser's own limits
        raise ProtocolError("bad_json", str(exc)[:200]) from exc


def decode_for(topic: str | Topic, payload: bytes | str) -> tuple[Topic, BaseModel]:
    """Parse the topic, decode the payload and check the payload's ``gw`` against it."""
    t = topic if isinstance(topic, Topic) else Topic.parse(topic)
    msg = decode(t.channel, payload)
    gw = getattr(msg, "gw", None)
    if gw != t.gateway_id:
        raise ProtocolError(
            "gateway_mismatch", f"payload gw {gw!r} on topic of gateway {t.gateway_id!r}", "gw"
        )
    return t, msg
