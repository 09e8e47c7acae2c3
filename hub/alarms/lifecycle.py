"""The closed loop: raised → notified → acknowledged → dispatched → on site → resolved → reviewed.

:func:`plan` is the whole state machine as a pure function. It returns the
:class:`Transition` to record (who, when, note) or raises :class:`TransitionRefused` with a
stable reason code and a sentence that tells the operator what to do instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from hub.alarms.errors import TransitionRefused


class State(enum.StrEnum):
    RAISED = "raised"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    REVIEWED = "reviewed"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    @property
    def closed(self) -> bool:
        return self in (State.RESOLVED, State.REVIEWED)


_ORDER = list(State)


def reached(current: State, awaited: State) -> bool:
    """True when the alarm is at ``awaited`` or further along (a closed case reached everything)."""
    return current.closed or current.rank >= awaited.rank


class Action(enum.StrEnum):
    NOTIFY = "notify"  #: system: the first notification was delivered
    ACKNOWLEDGE = "acknowledge"
    DISPATCH = "dispatch"
    ARRIVE = "arrive"
    RESOLVE = "resolve"
    REVIEW = "review"


class Outcome(enum.StrEnum):
    REAL_FIRE = "real_fire"
    REAL_GAS_LEAK = "real_gas_leak"
    MEDICAL = "medical"
    COOKING_SMOKE = "cooking_smoke"
    FALSE_PRESS = "false_press"
    TEST = "test"
    DEVICE_FAULT = "device_fault"
    RESIDENT_FINE = "resident_fine"
    RESTORED = "restored"  #: system: a supervisory/trouble condition ended before anyone took it
    OTHER = "other"


#: Outcomes that count as false alarms in the KPIs (the danger was not real).
FALSE_OUTCOMES = frozenset(
    {Outcome.COOKING_SMOKE, Outcome.FALSE_PRESS, Outcome.DEVICE_FAULT, Outcome.RESIDENT_FINE}
)

#: action → (states it may start from, state it leads to)
_TABLE: dict[Action, tuple[frozenset[State], State]] = {
    Action.NOTIFY: (frozenset({State.RAISED}), State.NOTIFIED),
    Action.ACKNOWLEDGE: (frozenset({State.RAISED, State.NOTIFIED}), State.ACKNOWLEDGED),
    Action.DISPATCH: (frozenset({State.ACKNOWLEDGED}), State.DISPATCHED),
    Action.ARRIVE: (frozenset({State.DISPATCHED}), State.ON_SITE),
    Action.RESOLVE: (frozenset({State.ACKNOWLEDGED, State.DISPATCHED, State.ON_SITE}), State.RESOLVED),
    Action.REVIEW: (frozenset({State.RESOLVED}), State.REVIEWED),
}

#: What to do instead, when an action comes too early.
_HINT: dict[Action, str] = {
    Action.DISPATCH: "acknowledge it first",
    Action.ARRIVE: "dispatch a responder first",
    Action.RESOLVE: "acknowledge it first",
    Action.REVIEW: "resolve it first",
}

SYSTEM = "system"
MAX_NOTE = 2000


@dataclass(frozen=True, slots=True)
class Transition:
    action: Action
    from_state: State
    to_state: State
    actor: str
    at: datetime
    note: str = ""
    outcome: Outcome | None = None
    responder: str | None = None


def plan(
    state: State,
    action: Action,
    actor: str,
    at: datetime,
    note: str = "",
    outcome: Outcome | None = None,
    responder: str | None = None,
) -> Transition:
    """Check one lifecycle step and return what to record, or raise :class:`TransitionRefused`."""
    sources, target = _TABLE[action]
    if not actor or not actor.strip():
        raise TransitionRefused("actor_required", "every step records who did it", state)
    if len(note) > MAX_NOTE:
        raise TransitionRefused("note_too_long", f"note has {len(note)} characters, limit {MAX_NOTE}", state)
    if state not in sources:
        if (
            state == target
            or (state.rank > target.rank and not state.closed)
            or (state.closed and target.closed)
        ):
            detail = f"alarm is already {state.value}"
            reason = "already_done" if state == target else "already_past"
        elif state.closed:
            reason, detail = "closed", f"alarm is {state.value}; nothing can follow {action.value}"
        else:
            reason = f"not_{next(iter(sorted(sources, key=lambda s: s.rank))).value}"
            detail = f"cannot {action.value} an alarm that is {state.value}: {_HINT.get(action, '')}".rstrip(
                ": "
            )
        raise TransitionRefused(reason, detail, state)
    if action is Action.DISPATCH and not (responder and responder.strip()):
        raise TransitionRefused("responder_required", "dispatch says who goes (responder)", state)
    if action is Action.RESOLVE and outcome is None:
        raise TransitionRefused("outcome_required", "resolve records the outcome", state)
    if action is not Action.RESOLVE and outcome is not None:
        raise TransitionRefused("outcome_not_allowed", f"{action.value} takes no outcome", state)
    return Transition(action, state, target, actor.strip(), at, note, outcome, responder)


def auto_resolve(state: State, at: datetime, note: str) -> Transition:
    """The system closes a supervisory/trouble alarm whose condition ended before anyone took it."""
    if state not in (State.RAISED, State.NOTIFIED):
        raise TransitionRefused("taken", f"alarm is {state.value}: a person closes it", state)
    return Transition(Action.RESOLVE, state, State.RESOLVED, SYSTEM, at, note, Outcome.RESTORED)
