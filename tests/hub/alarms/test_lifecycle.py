"""Lifecycle state machine: the closed loop and its refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.alarms.errors import TransitionRefused
from hub.alarms.lifecycle import Action, Outcome, State, auto_resolve, plan, reached

T = datetime(2026, 3, 1, tzinfo=UTC)


def test_full_closed_loop() -> None:
    s = State.RAISED
    steps = [
        (Action.NOTIFY, {}),
        (Action.ACKNOWLEDGE, {"note": "called resident, no answer"}),
        (Action.DISPATCH, {"responder": "volunteer Li"}),
        (Action.ARRIVE, {}),
        (Action.RESOLVE, {"outcome": Outcome.COOKING_SMOKE}),
        (Action.REVIEW, {"note": "ok"}),
    ]
    seen = []
    for action, kw in steps:
        t = plan(s, action, "op-1", T, **kw)  # type: ignore[arg-type]
        assert t.from_state == s and t.actor == "op-1" and t.at == T
        s = t.to_state
        seen.append(s)
    assert seen == [
        State.NOTIFIED,
        State.ACKNOWLEDGED,
        State.DISPATCHED,
        State.ON_SITE,
        State.RESOLVED,
        State.REVIEWED,
    ]


def test_acknowledge_straight_from_raised() -> None:
    assert plan(State.RAISED, Action.ACKNOWLEDGE, "op", T).to_state is State.ACKNOWLEDGED


def test_resolve_by_phone_without_dispatch() -> None:
    t = plan(State.ACKNOWLEDGED, Action.RESOLVE, "op", T, outcome=Outcome.RESIDENT_FINE)
    assert t.to_state is State.RESOLVED and t.outcome is Outcome.RESIDENT_FINE


@pytest.mark.parametrize(
    ("state", "action", "reason"),
    [
        (State.NOTIFIED, Action.DISPATCH, "not_acknowledged"),
        (State.RAISED, Action.RESOLVE, "not_acknowledged"),
        (State.ACKNOWLEDGED, Action.ARRIVE, "not_dispatched"),
        (State.ON_SITE, Action.REVIEW, "not_resolved"),
        (State.ACKNOWLEDGED, Action.ACKNOWLEDGE, "already_done"),
        (State.DISPATCHED, Action.ACKNOWLEDGE, "already_past"),
        (State.REVIEWED, Action.RESOLVE, "already_past"),
        (State.RESOLVED, Action.ACKNOWLEDGE, "closed"),
        (State.RESOLVED, Action.DISPATCH, "closed"),
    ],
)
def test_invalid_transitions_are_refused_with_a_reason(state: State, action: Action, reason: str) -> None:
    kw = {"responder": "x"} if action is Action.DISPATCH else {}
    if action is Action.RESOLVE:
        kw = {"outcome": Outcome.OTHER}
    with pytest.raises(TransitionRefused) as err:
        plan(state, action, "op", T, **kw)  # type: ignore[arg-type]
    assert err.value.reason == reason
    assert err.value.state == state
    assert state.value in err.value.detail


def test_dispatch_needs_responder_resolve_needs_outcome_every_step_needs_actor() -> None:
    with pytest.raises(TransitionRefused, match="responder_required"):
        plan(State.ACKNOWLEDGED, Action.DISPATCH, "op", T)
    with pytest.raises(TransitionRefused, match="outcome_required"):
        plan(State.ON_SITE, Action.RESOLVE, "op", T)
    with pytest.raises(TransitionRefused, match="outcome_not_allowed"):
        plan(State.RAISED, Action.ACKNOWLEDGE, "op", T, outcome=Outcome.TEST)
    with pytest.raises(TransitionRefused, match="actor_required"):
        plan(State.RAISED, Action.ACKNOWLEDGE, "  ", T)
    with pytest.raises(TransitionRefused, match="note_too_long"):
        plan(State.RAISED, Action.ACKNOWLEDGE, "op", T, note="x" * 2001)


def test_auto_resolve_only_untaken() -> None:
    assert auto_resolve(State.NOTIFIED, T, "restored").outcome is Outcome.RESTORED
    with pytest.raises(TransitionRefused, match="taken"):
        auto_resolve(State.ACKNOWLEDGED, T, "restored")


def test_reached() -> None:
    assert reached(State.DISPATCHED, State.ACKNOWLEDGED)
    assert not reached(State.NOTIFIED, State.ACKNOWLEDGED)
    assert reached(State.RESOLVED, State.ON_SITE)  # closed without dispatch reached everything
