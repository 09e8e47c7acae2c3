"""Exceptions of the alarm engine.

AlarmError
    base of everything raised by ``hub.alarms``.
TransitionRefused
    a lifecycle transition that the state machine does not allow (``reason`` is a stable
    code such as ``not_acknowledged``, ``detail`` says what to do instead).
ConcurrentUpdate (a TransitionRefused)
    another operator changed the alarm first; the loser is told the alarm's new state.
PolicyError
    a routing, escalation or duty-schedule policy that cannot be used (bad time, empty step…).
DecisionFailed
    a step of deciding or routing a signal (registry, rules, routing, escalation, notify)
    raised; ``step`` names it. The engine answers it with a fail-safe alarm, never re-raises.
Undecided
    neither the decision nor the fail-safe alarm could be stored (the database is away):
    the signal stays undecided (no processed-signal row) and is retried.
"""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from hub.db.errors import Conflict


class AlarmError(Exception):
    """Base of the alarm engine's exceptions."""


class TransitionRefused(AlarmError):
    """A lifecycle step that is not allowed from the alarm's current state."""

    def __init__(self, reason: str, detail: str, state: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.state = state
        super().__init__(f"{reason}: {detail}")


class ConcurrentUpdate(TransitionRefused, Conflict):
    """Someone else changed the alarm between our read and our write."""


class PolicyError(AlarmError, ValueError):
    """A policy (routing, escalation, duty schedule) given as data is not usable."""


class DecisionFailed(AlarmError):
    """A decision step raised; carries the step's name and the original exception."""

    def __init__(self, step: str, cause: BaseException) -> None:
        self.step = step
        self.cause = cause
        super().__init__(f"{step}: {type(cause).__name__}: {cause}")


class Undecided(AlarmError):
    """A signal that is still without a decision after the fail-safe path failed too."""

    def __init__(self, key: str, error: str, cause: BaseException) -> None:
        self.key = key
        self.error = error
        self.cause = cause
        super().__init__(f"{key} undecided: {error}; fail-safe alarm not stored either: {cause}")


def database_away(exc: BaseException) -> bool:
    """The database refused us (locked past every retry, restarting, unreachable): the
    decision is retried whole, the fail-safe alarm is for decisions that fail."""
    return isinstance(exc, OperationalError) or isinstance(exc.__cause__, OperationalError)


def error_text(exc: BaseException) -> str:
    """What the alarm card and the log say went wrong (bounded)."""
    text = str(exc) if isinstance(exc, DecisionFailed) else f"engine: {type(exc).__name__}: {exc}"
    return text[:500]
