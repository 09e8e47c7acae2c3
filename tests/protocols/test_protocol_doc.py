"""docs/protocol.md is what vendors build from: its examples must be valid messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import protocols as p

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\s*```json\n(.*?)```", re.S)


def examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall(DOC.read_text())


def test_every_channel_has_an_example() -> None:
    assert {name for name, _ in examples()} == {c.value for c in p.Channel}


@pytest.mark.parametrize(("channel", "body"), examples())
def test_example_decodes(channel: str, body: str) -> None:
    msg = p.decode(p.Channel(channel), body)
    topic = str(p.Topic.of("gw-000123", channel))
    assert p.decode_for(topic, body)[1] == msg


def test_documented_limits_match_the_code() -> None:
    text = DOC.read_text()
    from protocols.codec import LIMITS

    for channel, limit in LIMITS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{channel.value}` |"))
        assert row.rstrip(" |").endswith(f"{limit // 1024} KiB"), row


def test_documented_kinds_match_the_code() -> None:
    text = DOC.read_text()
    for kind in p.EventKind:
        assert f"| `{kind.value}` | {p.class_of(kind).value} |" in text
