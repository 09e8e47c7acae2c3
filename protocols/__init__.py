"""The safehome wire contract: topics, messages and codecs shared by gateways and the hub.

This package imports nothing else of safehome; edge/ and hub/ meet only through it.
"""

from protocols.codec import MAX_PAYLOAD, decode, decode_for, encode
from protocols.errors import ProtocolError
from protocols.ids import is_valid_id, new_event_id, validate_id
from protocols.messages import (
    PROTOCOL_VERSION,
    Ack,
    AckItem,
    AckStatus,
    AlarmClass,
    Command,
    CommandName,
    CommandResult,
    Config,
    ConfigRefusal,
    Event,
    EventKind,
    EventState,
    GatewayState,
    Reading,
    SensorConfig,
    Status,
    Telemetry,
    class_of,
)
from protocols.topics import (
    DOWNLINK_CHANNELS,
    HUB_SHARE_GROUP,
    ROOT,
    UPLINK_CHANNELS,
    Channel,
    Topic,
    gateway_subscriptions,
    hub_subscriptions,
)

__all__ = [
    "DOWNLINK_CHANNELS",
    "HUB_SHARE_GROUP",
    "MAX_PAYLOAD",
    "PROTOCOL_VERSION",
    "ROOT",
    "UPLINK_CHANNELS",
    "Ack",
    "AckItem",
    "AckStatus",
    "AlarmClass",
    "Channel",
    "Command",
    "CommandName",
    "CommandResult",
    "Config",
    "ConfigRefusal",
    "Event",
    "EventKind",
    "EventState",
    "GatewayState",
    "ProtocolError",
    "Reading",
    "SensorConfig",
    "Status",
    "Telemetry",
    "Topic",
    "class_of",
    "decode",
    "decode_for",
    "encode",
    "gateway_subscriptions",
    "hub_subscriptions",
    "is_valid_id",
    "new_event_id",
    "validate_id",
]
