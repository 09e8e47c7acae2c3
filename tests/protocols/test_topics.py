from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import Channel, ProtocolError, Topic, gateway_subscriptions, hub_subscriptions, is_valid_id
from protocols.ids import ID_PATTERN

ids = st.from_regex(ID_PATTERN, fullmatch=True)


@given(ids, st.sampled_from(list(Channel)))
def test_topic_round_trip(gw: str, ch: Channel) -> None:
    t = Topic.of(gw, ch)
    assert Topic.parse(str(t)) == t
    assert str(t) == f"safehome/v1/gw/{gw}/{ch.value}"


@pytest.mark.parametrize(
    "bad", ["", "a/b", "gw+", "gw#", "gw\x00", "GW1", "-gw", "gw 1", "gw\u00e9", "x" * 65, "+", "#"]
)
def test_bad_gateway_ids_are_refused(bad: str) -> None:
    assert not is_valid_id(bad)
    with pytest.raises(ProtocolError) as exc:
        Topic.of(bad, Channel.EVENT)
    assert exc.value.reason == "bad_id"
    assert exc.value.field == "gateway_id"


@given(st.text(max_size=80))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        t = Topic.parse(text)
    except ProtocolError:
        return
    # Whatever parsed cannot contain wildcards or extra levels.
    assert "/" not in t.gateway_id and "+" not in t.gateway_id and "#" not in t.gateway_id


@pytest.mark.parametrize(
    "topic",
    [
        "safehome/v1/gw/a/b/event",  # extra level: gateway id with a slash
        "safehome/v1/gw/+/event",
        "safehome/v1/gw/#",
        "safehome/v2/gw/a/event",
        "safehome/v1/gw/a/unknown",
        "other/v1/gw/a/event",
    ],
)
def test_parse_refuses(topic: str) -> None:
    with pytest.raises(ProtocolError):
        Topic.parse(topic)


def test_subscriptions() -> None:
    subs = hub_subscriptions()
    assert all(s.startswith("$share/hub/safehome/v1/gw/+/") for s in subs)
    assert {s.rsplit("/", 1)[1] for s in subs} == {"event", "telemetry", "status", "result"}
    assert gateway_subscriptions("gw-7") == [
        "safehome/v1/gw/gw-7/ack",
        "safehome/v1/gw/gw-7/cmd",
        "safehome/v1/gw/gw-7/config",
    ]
    assert Topic.of("a", "event").uplink and not Topic.of("a", "ack").uplink
