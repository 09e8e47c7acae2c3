"""The gateway's answer to the hub's config revision, read from its last status (pure)."""

from __future__ import annotations

from hub.provision.outcome import outcome


def test_applied_refused_pending() -> None:
    assert outcome(None, 3).text == "revision 3 not confirmed by the gateway yet"
    assert outcome({"config_revision": 2}, 3).state == "pending"
    assert outcome({"config_revision": 3}, 3).text == "applied revision 3"
    refused = outcome({"config_revision": 2, "config_error": {"revision": 3, "reason": "unknown_sensor",
                                                              "detail": "gas-7"}}, 3)
    assert refused.state == "refused"
    assert refused.text == "refused revision 3: unknown_sensor (gas-7); still running revision 2"
    assert refused.to_json()["running"] == 2


def test_a_stale_refusal_does_not_answer_a_newer_revision() -> None:
    old = {"config_revision": 2, "config_error": {"revision": 3, "reason": "unknown_sensor"}}
    assert outcome(old, 4).state == "pending"
    # applied after the refusal (the agent clears it, but a stored status may still carry it)
    assert outcome({"config_revision": 4, "config_error": {"revision": 3, "reason": "x"}}, 4).state == "applied"
