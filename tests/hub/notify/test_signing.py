"""Webhook signatures (pure)."""

from __future__ import annotations

import pytest

from hub.notify.errors import SignatureError
from hub.notify.signing import sign, verify


def test_sign_and_verify() -> None:
    sig = sign("s3cret", 1_700_000_000, b'{"a":1}')
    assert sig.startswith("v1=") and len(sig) == 3 + 64
    verify("s3cret", sig, "1700000000", b'{"a":1}', now=1_700_000_100)


@pytest.mark.parametrize(
    ("secret", "ts", "body", "now", "match"),
    [
        ("wrong", "1700000000", b'{"a":1}', 1_700_000_000, "does not match"),
        ("s3cret", "1700000000", b'{"a":2}', 1_700_000_000, "does not match"),
        ("s3cret", "1700000001", b'{"a":1}', 1_700_000_000, "does not match"),
        ("s3cret", "1700000000", b'{"a":1}', 1_700_000_301, "tolerance"),
        ("s3cret", "yesterday", b'{"a":1}', 1_700_000_000, "bad"),
    ],
)
def test_tampering_and_replay_are_refused(secret: str, ts: str, body: bytes, now: float, match: str) -> None:
    sig = sign("s3cret", 1_700_000_000, b'{"a":1}')
    with pytest.raises(SignatureError, match=match):
        verify(secret, sig, ts, body, now=now)
