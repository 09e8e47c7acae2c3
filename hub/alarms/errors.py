"""Exceptions of the alarm engine.

AlarmError
    base of everything raised by ``hub.alarms``.
TransitionRefused
    a lifecycle transition that the state machine does not allow (``reason`` is a stable
    code such as ``not_acknowledged``, ``detail`` says what to do instead).
ConcurrentUpdate (a TransitionRefused)
    another operator changed the alarm first; the loser is told the alarm's new state.
AlarmNotFound
    no alarm with that id (or none in the caller's region: the API never says which).
PolicyError
    a routing, escalation or duty-schedule policy that cannot be used (bad time, empty step…).
"""

from __future__ import annotations


class AlarmError(Exception):
    """Base of the alarm engine's exceptions."""


class TransitionRefused(AlarmError):
    """A lifecycle step that is not allowed from the alarm's current state."""

    def __init__(self, reason: str, detail: str, state: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.state = state
        super().__init__(f"{reason}: {detail}")


class ConcurrentUpdate(TransitionRefused):
    """Someone else changed the alarm between our read and our write."""


class AlarmNotFound(AlarmError):
    def __init__(self, alarm_id: str) -> None:
        self.alarm_id = alarm_id
        super().__init__(f"no alarm {alarm_id!r}")


class PolicyError(AlarmError, ValueError):
    """A policy (routing, escalation, duty schedule) given as data is not usable."""
