"""Pure input filters: debounce / glitch filter, panic-button long-press cancel, level
hysteresis (rising, e.g. gas) and a falling threshold with hysteresis (e.g. battery low).

No pins and no clock here: every function takes the sample and a monotonic ``now`` (s),
so that the behaviour is tested exactly, without hardware or sleeps.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class Debouncer:
    """Accepts a new input state only after it was seen unchanged for ``stable_s``.

    A pulse shorter than ``stable_s`` (relay bounce, EMI glitch on a long cable) never
    produces a change. ``update`` returns the new state when it changes, else ``None``.
    """

    stable_s: float
    state: bool = False
    _candidate: bool | None = None
    _since: float = 0.0

    def update(self, raw: bool, now: float) -> bool | None:
        if raw == self.state:
            self._candidate = None
            return None
        if self._candidate is not raw:
            self._candidate = raw
            self._since = now
        if now - self._since >= self.stable_s:
            self.state = raw
            self._candidate = None
            return raw
        return None


class PanicAction(enum.StrEnum):
    ALARM = "alarm"
    CANCEL = "cancel"


class _PanicState(enum.Enum):
    IDLE = 0
    FIRST_HOLD = 1  #: the press that raised the alarm is still held
    ACTIVE = 2  #: alarm raised, button released: a long press may cancel it
    SECOND_HOLD = 3  #: pressed again while active: long → cancel, short → alarm again
    CANCELLED_HOLD = 4  #: cancel sent, waiting for release


@dataclass(slots=True)
class PanicButton:
    """Press = alarm at once; a *later* press held ``long_press_s`` cancels (restore).

    Safety rules: the press that raises the alarm can never cancel it, however long it is
    held (a person in distress may hold the button); a short press while an alarm is
    active raises the alarm again; the cancel window closes ``cancel_window_s`` after the
    alarm. Input is the debounced "pressed" state.
    """

    long_press_s: float | None = 3.0
    cancel_window_s: float = 600.0
    _state: _PanicState = _PanicState.IDLE
    _since: float = 0.0
    _alarm_at: float = 0.0

    def update(self, pressed: bool, now: float) -> PanicAction | None:
        st = self._state
        if st is _PanicState.ACTIVE and now - self._alarm_at > self.cancel_window_s:
            st = self._state = _PanicState.IDLE
        if st is _PanicState.IDLE:
            if pressed:
                self._state, self._alarm_at = _PanicState.FIRST_HOLD, now
                return PanicAction.ALARM
            return None
        if st is _PanicState.FIRST_HOLD:
            if not pressed:
                self._state = _PanicState.ACTIVE if self.long_press_s is not None else _PanicState.IDLE
            return None
        if st is _PanicState.ACTIVE:
            if pressed:
                self._state, self._since = _PanicState.SECOND_HOLD, now
            return None
        if st is _PanicState.SECOND_HOLD:
            assert self.long_press_s is not None
            if pressed and now - self._since >= self.long_press_s:
                self._state = _PanicState.CANCELLED_HOLD
                return PanicAction.CANCEL
            if not pressed:
                self._state, self._alarm_at = _PanicState.ACTIVE, now
                return PanicAction.ALARM
            return None
        # CANCELLED_HOLD
        if not pressed:
            self._state = _PanicState.IDLE
        return None

    @property
    def active(self) -> bool:
        return self._state is not _PanicState.IDLE


def next_level(value: float, level: int, thresholds: Sequence[float], hysteresis: float) -> int:
    """Level 0..len(thresholds) after ``value``: up on reaching a threshold, down only
    below threshold - hysteresis (so a reading hovering at a threshold does not flap)."""
    while level < len(thresholds) and value >= thresholds[level]:
        level += 1
    while level > 0 and value < thresholds[level - 1] - hysteresis:
        level -= 1
    return level


@dataclass(slots=True)
class LevelFilter:
    thresholds: tuple[float, ...]
    hysteresis: float
    level: int = 0

    def update(self, value: float) -> int | None:
        """Feed a reading; return the new level when it changed, else None."""
        new = next_level(value, self.level, self.thresholds, self.hysteresis)
        if new == self.level:
            return None
        self.level = new
        return new


@dataclass(slots=True)
class FallingThreshold:
    """A descending threshold with hysteresis (battery voltage): *low* once the value
    falls below ``threshold``; back to normal only once it rises above
    ``threshold + hysteresis``, so a battery sagging and recovering under load around the
    threshold does not flap between battery_low and restore."""

    threshold: float
    hysteresis: float
    low: bool = False

    def update(self, value: float) -> bool | None:
        """Feed a reading; return the new *low* state when it changed, else None."""
        if not self.low and value < self.threshold:
            self.low = True
            return True
        if self.low and value > self.threshold + self.hysteresis:
            self.low = False
            return False
        return None
