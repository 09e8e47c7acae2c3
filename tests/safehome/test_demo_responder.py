"""The demo's scripted responder: fast workstations work alarms; the slow one is taken over by its center."""

from __future__ import annotations

import datetime as dt

from safehome.demo_responder import Timing, next_step

T0 = dt.datetime(2026, 11, 28, 2, 13, tzinfo=dt.UTC)
T = Timing(ack_s=8, dispatch_s=15, arrive_s=45, resolve_s=70, slow_ack_s=80)


def alarm(state: str, ws: str = "ws-0001", cls: str = "alarm", kind: str = "smoke") -> dict:  # type: ignore[type-arg]
    return {"id": "a1", "state": state, "alarm_class": cls, "kind": kind, "workstation_id": ws,
            "subdistrict_id": "sd-01", "raised_at": T0.isoformat()}  # fmt: skip


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def test_fast_workstation_walks_the_whole_loop() -> None:
    assert next_step(alarm("notified"), at(7), set(), T) is None
    steps = [next_step(alarm(s), at(t), set(), T) for s, t in
             [("notified", 8), ("acknowledged", 15), ("dispatched", 45), ("on_site", 70)]]  # fmt: skip
    assert [(x.action, x.region) for x in steps if x] == [
        ("acknowledge", "workstation"), ("dispatch", "workstation"), ("arrive", "workstation"), ("resolve", "workstation"),
    ]  # fmt: skip
    assert steps[1] is not None and steps[1].body["responder"]
    assert steps[3] is not None and steps[3].body["outcome"] == "cooking_smoke"


def test_slow_workstation_is_taken_over_by_the_subdistrict_after_escalation() -> None:
    slow = {"ws-0002"}
    assert next_step(alarm("notified", "ws-0002"), at(79), slow, T) is None
    step = next_step(alarm("notified", "ws-0002"), at(80), slow, T)
    assert step is not None and (step.action, step.region) == ("acknowledge", "subdistrict")


def test_troubles_are_acknowledged_and_resolved_without_dispatch() -> None:
    step = next_step(alarm("acknowledged", cls="trouble", kind="battery_low"), at(70), set(), T)
    assert step is not None and step.action == "resolve" and step.body["outcome"] == "device_fault"
